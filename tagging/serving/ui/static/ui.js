// The page's one script: post an interaction to the JSON API, then reload to show the change.
(function () {
  "use strict";
  document.querySelectorAll("form[data-interaction]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var out = form.querySelector("output");
      var body = {events: [{user_id: form.user_id.value.trim(), event: form.event.value}]};
      out.textContent = "";
      fetch("/videos/" + encodeURIComponent(form.dataset.interaction) + "/interactions", {
        method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)
      }).then(function (r) {
        return r.json().then(function (j) {
          if (!r.ok) { throw new Error((j.error || r.status) + ": " + (j.detail || JSON.stringify(j))); }
          window.location.reload();
        });
      }).catch(function (e) { out.textContent = String(e.message || e); });
    });
  });
  document.querySelectorAll("form[data-user-form]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      var id = form.user.value.trim();
      if (!id) { ev.preventDefault(); return; }
      ev.preventDefault();
      window.location.href = "/ui/users/" + encodeURIComponent(id);
    });
  });
})();
