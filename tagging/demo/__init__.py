"""The demo: a small catalog, a synthetic audience with known taste groups, a CF space and a CB2CF model, served."""
