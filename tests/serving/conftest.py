"""The HTTP service fixture shared by the serving tests: uvicorn in a thread, real decode children."""

from __future__ import annotations

import threading

import httpx
import media_factory as mf
import pytest
from serving_helpers import FakePipeline, free_port, planted_space, wait_ready

from cb2cf.audience import AudienceConfig
from tagging.serving.hook import HookConfig, UploadHook
from tagging.serving.server import ServerConfig, create_app


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """uvicorn in a thread: model-free pipeline (fixed 4-d CF vector), real decode children, a planted CF space.

    Yields ``(client, root, outside)``; request bodies other than uploads are capped at 64 KiB
    and a body that stalls for 1 s is given up (408).
    """
    import uvicorn

    d = tmp_path_factory.mktemp("http")
    root, outside = d / "root", d / "outside"
    root.mkdir()
    outside.mkdir()
    mf.make_video(root / "clip.mp4", seconds=1.0)
    mf.make_video(outside / "secret.mp4", seconds=1.0)
    (root / "escape.mp4").symlink_to(outside / "secret.mp4")
    planted_space(n_clusters=4, per_cluster=30, dim=4).save(d / "space")
    hook_cfg = HookConfig(db=str(d / "db"), space=str(d / "space"), maintenance_interval_s=None,
                          audience=AudienceConfig(k=20, exploration=0.2, n_clusters=4, near_clusters=1))
    hook = UploadHook(hook_cfg, pipeline=FakePipeline())
    app = create_app(ServerConfig(hook=hook_cfg, roots=[str(root)], max_upload_bytes=200_000, max_body_bytes=65536,
                                  body_timeout_s=1.0), hook=hook)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    wait_ready(client)
    yield client, root, outside
    client.close()
    srv.should_exit = True
    t.join(30)
