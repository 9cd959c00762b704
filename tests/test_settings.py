from hqnn_desktop.core.paths import config_dir
from hqnn_desktop.core.settings import Settings


def test_settings_round_trip_and_damaged_file_is_kept_aside():
    s = Settings()
    s.set("last_folder", "/data/smears")
    s.save()
    assert Settings().get("last_folder") == "/data/smears"
    path = config_dir() / "settings.json"
    path.write_text("{broken")
    assert Settings().get("last_folder") is None
    assert (config_dir() / "settings.damaged.json").read_text() == "{broken"


def test_leftovers_of_a_killed_save_are_cleared_at_start():
    s = Settings()
    s.set("pack", "pbc8")
    s.save()
    leftover = config_dir() / ".settings.json.k1ll3d.tmp"
    leftover.write_text('{"pack": "half')
    other = config_dir() / ".other.json.abc.tmp"
    other.write_text("not ours")
    assert Settings().get("pack") == "pbc8"
    assert not leftover.exists() and other.exists()
