"""bbbcore.registry: taught models under the data folder, never over a shipped one."""

from __future__ import annotations

import os
import time

import pytest

from bbbcore.registry import RegistryError, new_model_path, registered_models, registry_folder, suggested_name


def fake_model(path) -> None:
    path.write_bytes(b"keras")
    path.with_name(path.stem + ".card.json").write_text("{}")


def test_new_models_get_free_plain_names_and_are_listed_newest_first(tmp_path):
    assert registered_models(tmp_path) == [] and registry_folder(tmp_path) == tmp_path / "models"
    first = new_model_path("lab-1", tmp_path)
    assert first == tmp_path / "models" / "lab-1.keras" and first.parent.is_dir()
    fake_model(first)
    second = new_model_path(suggested_name("bbb_unet", tmp_path), tmp_path)
    fake_model(second)
    os.utime(first, (time.time() - 100, time.time() - 100))
    (tmp_path / "models" / "stray.keras").write_bytes(b"no card")  # not a model without its card
    assert registered_models(tmp_path) == [second, first] and second.stem == "bbb_unet-taught-1"
    assert suggested_name("bbb_unet", tmp_path) == "bbb_unet-taught-2"


@pytest.mark.parametrize("name, message", [
    ("", "a model name is 1-80 letters"), ("../escape", "no folders"), ("has space", "no spaces"),
    ("bbb_unet", "the name of a shipped model"), ("lab.keras", "a model name"),
])
def test_bad_or_shipped_names_are_refused(tmp_path, name, message):
    with pytest.raises(RegistryError, match=message):
        new_model_path(name, tmp_path)


def test_a_taken_name_is_refused(tmp_path):
    fake_model(new_model_path("lab", tmp_path))
    with pytest.raises(RegistryError, match="lab: a taught model of this name exists already"):
        new_model_path("lab", tmp_path)
