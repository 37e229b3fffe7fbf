"""The device wall: coalesced model updates, legible painting, drops and menus."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QFont,
    QImage,
    QLinearGradient,
    QPainter,
    QPalette,
    QRawFont,
)
from PySide6.QtWidgets import QApplication

from app.gui.theme import TILE_STATES, contrast_ratio, state_colors
from app.gui.tiles import (
    ACTIONS,
    DeviceTile,
    DeviceTileModel,
    TileDelegate,
    TileRole,
    TileWallView,
    format_elapsed,
)
from app.gui.tiles.delegate import GLYPHS, STATE_DETAILS, STATE_LABELS
from tests.gui.conftest import PaintCounter

NOW = 1_700_000_000.0


def phone_screen_png(colour: str) -> bytes:
    """A small portrait 'screenshot' for tiles that carry a thumbnail."""
    image = QImage(72, 144, QImage.Format.Format_RGB32)
    painter = QPainter(image)
    gradient = QLinearGradient(0, 0, 0, 144)
    gradient.setColorAt(0, QColor(colour))
    gradient.setColorAt(1, QColor("#101418"))
    painter.fillRect(image.rect(), gradient)
    painter.fillRect(8, 20, 56, 10, QColor("#ffffff"))
    painter.fillRect(8, 40, 40, 40, QColor("#f0c040"))
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data.data())


def sample_tiles(now: float = NOW) -> list[DeviceTile]:
    """Twelve phones in every state, as a lab looks on a busy afternoon."""
    return [
        DeviceTile("R58N12ABCDE", "bench-01", "Galaxy S21", "busy", 87, True, "adb.shell",
                   "t-1001", 45, "capture", "Recording 12 of 30 clips", now - 135, "success",
                   ("camera", "lab-a")),
        DeviceTile("emulator-5554", "", "Pixel 7", "idle", 100, False, last_result="success",
                   tags=("lab-a",)),
        DeviceTile("9B301FFAZ0", "night-shift", "Pixel 6a", "busy", 18, False, "adb.install",
                   "t-1002", None, "push", "Uploading base.apk (84 MB)", now - 4000, "failure",
                   ("lab-b",), phone_screen_png("#3366cc")),
        DeviceTile("HT7A1B2C3D", "qa-tablet", "Nexus 9 tablet with an extraordinarily long name",
                   "held", 55, None, last_result="revoked", tags=("manual", "tablet")),
        DeviceTile("ZY22BXQ9K", "", "moto g(60)", "maintenance", 9, True,
                   last_result="failure", tags=("battery-swap",)),
        DeviceTile("192.168.1.40:5555", "wifi-cam", "Pixel 4a", "offline", None, None,
                   last_result="success"),
        DeviceTile("0A1B2C3D4E5F", "", "", "unauthorized", None, None),
        DeviceTile("CB512FLK9", "old-one", "Xperia XZ2", "absent", 42, False,
                   last_result="success", tags=("retired",)),
        DeviceTile("R3CR40ABCD", "bench-02", "Galaxy A52", "busy", 64, True, "goal.capture",
                   "t-1003", 100, "finalise", "Writing artifacts", now - 59, None,
                   ("camera",), phone_screen_png("#2e9d4f")),
        DeviceTile("FA7AB1A01234", "", "Pixel 3", "idle", 73, False, last_result="failure"),
        DeviceTile("LGM250N5", "kiosk", "LG K50", "busy", 31, False, "agent.http_ping",
                   "t-1004", 5, "", "", now - 3, "success"),
        DeviceTile("SM-T500-77", "tab-lobby", "Galaxy Tab A7", "idle", 96, True,
                   tags=("lobby", "tablet", "kiosk", "demo", "long-tag-list")),
    ]


@pytest.fixture
def model(qtbot) -> DeviceTileModel:
    return DeviceTileModel(clock=lambda: NOW)


@pytest.fixture
def wall(qtbot, model: DeviceTileModel) -> TileWallView:
    view = TileWallView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.resize(4 * 246 + 30, 3 * 128 + 20)
    view.show()
    qtbot.waitExposed(view)
    return view


def _moved(tile: DeviceTile, **changes: object) -> DeviceTile:
    from dataclasses import replace

    return replace(tile, **changes)  # type: ignore[arg-type]


def _delegate(wall: TileWallView) -> TileDelegate:
    delegate = wall.itemDelegate()
    assert isinstance(delegate, TileDelegate)
    return delegate


def _show_sample_tiles(qtbot, model: DeviceTileModel,
                       wall: TileWallView) -> tuple[list[DeviceTile], TileDelegate]:
    """Show the sample tiles and wait until each has been painted."""
    tiles = sample_tiles()
    model.set_tiles(tiles)
    delegate = _delegate(wall)
    qtbot.waitUntil(lambda: len(delegate.paints) == len(tiles))
    return tiles, delegate


def _reset_counts(delegate: TileDelegate) -> None:
    delegate.paints.clear()
    delegate.renders.clear()


def test_set_tiles_resets_only_when_the_set_of_serials_changes(
    qtbot, model: DeviceTileModel
) -> None:
    tiles = sample_tiles()
    resets: list[int] = []
    changes: list[tuple[int, int]] = []
    model.modelReset.connect(lambda: resets.append(1))
    model.dataChanged.connect(lambda a, b, roles=(): changes.append((a.row(), b.row())))
    model.set_tiles(tiles)
    assert len(resets) == 1 and model.rowCount() == 12
    # Same phones, two of them changed: no reset, one dataChanged per changed row.
    tiles[3] = _moved(tiles[3], state="idle")
    tiles[7] = _moved(tiles[7], battery_level=41)
    model.set_tiles(tiles)
    assert len(resets) == 1
    assert changes == [(3, 3), (7, 7)]
    # A phone unplugged for good: the set changed, so the model resets.
    model.set_tiles(tiles[:-1])
    assert len(resets) == 2 and model.rowCount() == 11
    assert model.row_of(tiles[-1].serial) == -1
    assert model.tile(model.row_of("R58N12ABCDE")) == tiles[0]


def test_updates_are_coalesced_and_counters_follow(qtbot, model: DeviceTileModel) -> None:
    tiles = sample_tiles()
    model.set_tiles(tiles)
    assert model.counters() == {"idle": 3, "busy": 4, "held": 1, "maintenance": 1,
                                "offline": 1, "unauthorized": 1, "absent": 1, "total": 12}
    emitted: list[dict[str, int]] = []
    model.counters_changed.connect(emitted.append)
    model.update_tiles([_moved(tiles[1], state="busy")])
    model.update_tiles([_moved(tiles[1], state="offline")])  # newer snapshot wins
    model.update_tiles([DeviceTile("NEW-PHONE-1", model="Pixel 8")])
    assert model.tile(1) == tiles[1]  # nothing applied before the flush
    with qtbot.waitSignal(model.rowsInserted):
        pass
    assert model.tile(1).state == "offline"
    assert model.tile(12).serial == "NEW-PHONE-1"
    assert model.flush_count == 1
    assert emitted[-1]["offline"] == 2 and emitted[-1]["idle"] == 3
    assert emitted[-1]["total"] == 13
    model.remove_tiles(["NEW-PHONE-1", "not-there"])
    assert model.rowCount() == 12 and model.counters()["total"] == 12


def test_a_burst_of_10000_updates_costs_a_handful_of_repaints(
    qtbot, model: DeviceTileModel, wall: TileWallView
) -> None:
    tiles = sample_tiles()
    model.set_tiles(tiles)
    qtbot.wait(50)
    counter = PaintCounter(wall.viewport())
    changes: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda top, bottom, roles=(): changes.append((top.row(),
                                                                            bottom.row())))
    for i in range(10_000):
        tile = tiles[i % len(tiles)]
        model.update_tiles([_moved(tile, progress_percent=i % 101, battery_level=i % 100)])
    qtbot.wait(120)
    assert model.flush_count == 1
    # One signal per changed row (a block would repaint its bounding box on the wall).
    assert changes == [(row, row) for row in range(12)]
    assert 1 <= counter.count <= 5
    last = tiles[(10_000 - 1) % 12]
    assert model.tile(model.row_of(last.serial)).progress_percent == 9_999 % 101


def test_a_changed_tile_repaints_alone_and_unchanged_tiles_are_not_rendered_again(
    qtbot, model: DeviceTileModel, wall: TileWallView
) -> None:
    tiles, delegate = _show_sample_tiles(qtbot, model, wall)
    assert all(delegate.renders[t.serial] == 1 for t in tiles)
    _reset_counts(delegate)
    model.update_tiles([_moved(tiles[5], state="idle", last_result="failure")])
    qtbot.waitUntil(lambda: bool(delegate.paints))
    qtbot.wait(50)
    assert set(delegate.paints) == {tiles[5].serial}
    assert delegate.renders == {tiles[5].serial: 1}
    # Two tiles at opposite corners: those two, not every tile between them.
    _reset_counts(delegate)
    model.update_tiles([_moved(tiles[0], battery_level=12), _moved(tiles[11], tags=())])
    qtbot.waitUntil(lambda: len(delegate.paints) >= 2)
    qtbot.wait(50)
    assert set(delegate.paints) == set(delegate.renders) == {tiles[0].serial, tiles[11].serial}
    # A full repaint (e.g. the window was covered) redraws every tile from its pixmap.
    _reset_counts(delegate)
    wall.viewport().repaint()
    assert set(delegate.paints) == {t.serial for t in tiles}
    assert not delegate.renders
    # Selecting a tile re-renders that tile only (its border changes).
    selection = wall.selectionModel()
    selection.select(model.index(2, 0), selection.SelectionFlag.Select)
    wall.viewport().repaint()
    assert delegate.renders == {tiles[2].serial: 1}


def test_a_paint_renders_a_few_changed_tiles_and_the_rest_catch_up_at_once(
    qtbot, model: DeviceTileModel, wall: TileWallView
) -> None:
    from app.gui.tiles.delegate import RENDER_BUDGET

    tiles, delegate = _show_sample_tiles(qtbot, model, wall)
    delegate.renders.clear()
    model.update_tiles([_moved(t, progress_percent=7, last_result="revoked") for t in tiles])
    model.flush()
    wall.viewport().repaint()  # one paint: a bounded number of tiles is rendered afresh...
    assert sum(delegate.renders.values()) == RENDER_BUDGET < len(tiles)
    # ...the others showed their previous image and are repainted right after.
    qtbot.waitUntil(lambda: set(delegate.renders) == {t.serial for t in tiles}, timeout=1000)
    assert all(n == 1 for n in delegate.renders.values())
    shown = wall.viewport().grab().toImage()
    delegate.forget()
    assert shown == wall.viewport().grab().toImage()  # what is shown is current


def test_cached_tiles_look_the_same_as_freshly_rendered_ones(
    qtbot, model: DeviceTileModel, wall: TileWallView
) -> None:
    model.set_tiles(sample_tiles())
    qtbot.wait(50)
    first = wall.viewport().grab().toImage()
    delegate = _delegate(wall)
    delegate.renders.clear()
    second = wall.viewport().grab().toImage()
    assert not delegate.renders  # painted from the cache...
    delegate.forget()
    third = wall.viewport().grab().toImage()
    assert len(delegate.renders) == 12  # ...and rendered afresh
    assert first == second == third


def test_busy_tiles_tick_every_second(qtbot) -> None:
    clock = [NOW]
    model = DeviceTileModel(clock=lambda: clock[0])
    model.set_tiles(sample_tiles())
    row = model.row_of("R58N12ABCDE")
    assert model.index(row, 0).data(TileRole.ELAPSED) == pytest.approx(135)
    clock[0] += 1
    with qtbot.waitSignal(model.dataChanged, timeout=2500) as changed:
        pass
    assert TileRole.ELAPSED in changed.args[2]
    assert model.index(row, 0).data(TileRole.ELAPSED) == pytest.approx(136)
    assert format_elapsed(136) == "02:16" and format_elapsed(4000) == "1:06:40"
    # Nothing busy: the ticker stops.
    model.set_tiles([DeviceTile("A", state="idle")])
    assert not model._tick_timer.isActive()


def test_each_clock_is_reported_when_its_own_second_changes(qtbot) -> None:
    clock = [NOW]
    model = DeviceTileModel(clock=lambda: clock[0])
    started = {"A": NOW - 10.25, "B": NOW - 20.75, "C": NOW - 5.5}
    model.set_tiles([DeviceTile(s, state="busy", task_kind="adb.shell", task_started_at=at)
                     for s, at in started.items()] + [DeviceTile("D", state="idle")])
    ticked: list[str] = []
    model.dataChanged.connect(
        lambda top, _bottom, roles=(): ticked.append(model.tile(top.row()).serial)
        if TileRole.ELAPSED in roles else None)
    qtbot.wait(450)
    assert ticked == []  # no clock changed its second yet
    clock[0] = NOW + 0.3  # B shows 21 s now; A (10.55) and C (5.8) still show the same
    qtbot.waitUntil(lambda: bool(ticked), timeout=1000)
    qtbot.wait(450)
    assert ticked == ["B"]
    clock[0] = NOW + 0.8  # A reaches 11 s and C 6 s; B is still on 21
    qtbot.waitUntil(lambda: len(ticked) == 3, timeout=1000)
    qtbot.wait(450)
    assert ticked == ["B", "A", "C"]


def test_tile_states_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown tile state"):
        DeviceTile("X", state="online")


def test_delegate_uses_only_glyphs_that_dejavu_sans_has(qapp: QApplication) -> None:
    font = QRawFont.fromFont(QFont("DejaVu Sans"))
    assert font.familyName() == "DejaVu Sans"
    text = GLYPHS + "".join(STATE_LABELS.values()) + "".join(STATE_DETAILS.values())
    text += "".join(label for _, label in ACTIONS)
    missing = [ch for ch in set(text) if not font.supportsCharacter(ord(ch))]
    assert not missing


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_wall_paints_legible_tiles(
    qtbot, model: DeviceTileModel, wall: TileWallView, themed, grab_dir: Path, mode: str
) -> None:
    themed(mode)
    model.set_tiles(sample_tiles())
    selection = wall.selectionModel()
    selection.select(model.index(1, 0), selection.SelectionFlag.Select)
    qtbot.wait(50)
    delegate = _delegate(wall)
    size = delegate.tile_size(wall.font())
    assert 235 <= size.width() <= 245 and 115 <= size.height() <= 130
    # Four tiles per row in this width: the wall wraps.
    assert wall.visualRect(model.index(4, 0)).top() > wall.visualRect(model.index(3, 0)).top()
    image = wall.viewport().grab().toImage()
    palette = wall.palette()
    text = palette.color(QPalette.ColorRole.Text)
    tints = state_colors(palette)
    for row, tile in enumerate(sample_tiles()):
        rect = wall.visualRect(model.index(row, 0))
        # The tile's body is filled with its state's tint...
        probe = rect.center() + QPoint(0, rect.height() // 2 - 8)
        assert _close(image.pixelColor(probe), tints[tile.state]), (tile.state, probe)
        # ...and text is drawn on it in the palette's legible text colour.
        assert contrast_ratio(text, tints[tile.state]) >= 4.5
        assert _count_near(image, rect, text) > 30, tile.serial
    wall.grab().save(str(grab_dir / f"tiles-{mode}.png"))


def _close(a: QColor, b: QColor, tolerance: int = 4) -> bool:
    return (abs(a.red() - b.red()) + abs(a.green() - b.green())
            + abs(a.blue() - b.blue())) <= tolerance


def _count_near(image: QImage, rect, colour: QColor) -> int:
    hits = 0
    for y in range(rect.top(), rect.bottom(), 2):
        for x in range(rect.left(), rect.right(), 2):
            pixel = image.pixelColor(x, y)
            if (abs(pixel.red() - colour.red()) + abs(pixel.green() - colour.green())
                    + abs(pixel.blue() - colour.blue())) < 30:
                hits += 1
    return hits


def _drop(wall: TileWallView, row: int, paths: list[str]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
    point = QPointF(wall.visualRect(wall.model().index(row, 0)).center())
    action = Qt.DropAction.CopyAction
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QApplication.sendEvent(wall.viewport(), QDragEnterEvent(point.toPoint(), action, mime,
                                                            buttons, mods))
    QApplication.sendEvent(wall.viewport(), QDragMoveEvent(point.toPoint(), action, mime,
                                                           buttons, mods))
    QApplication.sendEvent(wall.viewport(), QDropEvent(point, action, mime, buttons, mods))


def test_apks_dropped_on_a_selected_tile_go_to_the_whole_selection(
    qtbot, model: DeviceTileModel, wall: TileWallView, tmp_path: Path
) -> None:
    model.set_tiles(sample_tiles())
    apk = tmp_path / "app-release.APK"
    apk.write_bytes(b"PK")
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    selection = wall.selectionModel()
    for row in (0, 2, 9):
        selection.select(model.index(row, 0), selection.SelectionFlag.Select)
    with qtbot.waitSignal(wall.apks_dropped) as dropped:
        _drop(wall, 2, [str(apk), str(notes)])
    assert dropped.args == [["9B301FFAZ0", "R58N12ABCDE", "FA7AB1A01234"], [str(apk)]]
    # On a tile outside the selection: that tile only.
    with qtbot.waitSignal(wall.apks_dropped) as dropped:
        _drop(wall, 5, [str(apk)])
    assert dropped.args == [["192.168.1.40:5555"], [str(apk)]]
    # Not an APK: nothing is emitted.
    with qtbot.assertNotEmitted(wall.apks_dropped):
        _drop(wall, 1, [str(notes)])


def test_context_menu_actions_carry_the_selection(
    qtbot, model: DeviceTileModel, wall: TileWallView
) -> None:
    model.set_tiles(sample_tiles())
    selection = wall.selectionModel()
    for row in (1, 3):  # an idle phone and a held one
        selection.select(model.index(row, 0), selection.SelectionFlag.Select)
    assert wall.selected_serials() == ["emulator-5554", "HT7A1B2C3D"]
    menu = wall.build_menu(wall.selected_serials())
    actions = {a.data(): a for a in menu.actions() if a.data()}
    assert list(actions) == [a for a, _ in ACTIONS]
    assert actions["release"].isEnabled() and actions["hold"].isEnabled()
    assert not actions["maintenance_off"].isEnabled()
    with qtbot.waitSignal(wall.action_requested) as requested:
        actions["hold"].trigger()
    assert requested.args == ["hold", ["emulator-5554", "HT7A1B2C3D"]]
    # Phones adb cannot reach get no shell, screenshot or install.
    offline = wall.build_menu(["192.168.1.40:5555", "0A1B2C3D4E5F"])
    disabled = {a.data() for a in offline.actions() if a.data() and not a.isEnabled()}
    assert {"shell", "screenshot", "install_apk", "reboot", "hold", "release"} <= disabled


# The offscreen platform cannot raise or grab for a popup; that is not ours.
@pytest.mark.qt_log_ignore("This plugin does not support")
def test_right_click_on_an_unselected_tile_selects_it_alone(
    qtbot, model: DeviceTileModel, wall: TileWallView
) -> None:
    from PySide6.QtGui import QContextMenuEvent

    model.set_tiles(sample_tiles())
    selection = wall.selectionModel()
    selection.select(model.index(0, 0), selection.SelectionFlag.Select)
    pos = wall.visualRect(model.index(6, 0)).center()
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos, wall.mapToGlobal(pos))
    QApplication.sendEvent(wall.viewport(), event)
    assert wall.selected_serials() == ["0A1B2C3D4E5F"]
    menus = [m for m in wall.findChildren(type(wall.build_menu([]))) if m.isVisible()]
    assert menus, "the context menu opened (popup, not exec)"
    for menu in menus:
        menu.close()
    assert TILE_STATES  # the seven states the wall knows


def test_a_hundred_tiles_changing_at_once_are_applied_over_a_few_ticks(
    qtbot, model: DeviceTileModel
) -> None:
    from app.gui.tiles.model import FLUSH_MAX_TILES

    lab = [DeviceTile(f"127.0.0.1:{5000 + i}", state="idle") for i in range(100)]
    model.set_tiles(lab)
    per_tick: list[int] = []
    model.dataChanged.connect(lambda *_: per_tick.append(model.flush_count))
    model.update_tiles(_moved(tile, state="busy", task_kind="demo.capture") for tile in lab)
    qtbot.waitUntil(lambda: model.counters()["busy"] == 100, timeout=2000)
    sizes = [per_tick.count(n) for n in sorted(set(per_tick))]
    assert sizes == [FLUSH_MAX_TILES] * 4  # oldest first, never all hundred in one go
    assert all(model.tile(row).state == "busy" for row in range(100))


def test_tiles_widen_so_each_row_fills_the_wall(qtbot, model: DeviceTileModel,
                                                 wall: TileWallView) -> None:
    """No blank strip at the right of the wall: a row's tiles share its width, and a
    narrower wall keeps at least the base width (fewer columns instead)."""
    from app.gui.tiles.delegate import TILE_WIDTH

    _show_sample_tiles(qtbot, model, wall)
    for width in (3 * TILE_WIDTH + 170, 2 * TILE_WIDTH + 60, 5 * TILE_WIDTH + 230):
        wall.resize(width, wall.height())
        qtbot.waitUntil(lambda: wall.visualRect(model.index(0, 0)).width()
                        == _delegate(wall).tile_width)
        rects = [wall.visualRect(model.index(row, 0)) for row in range(model.rowCount())]
        first_row = [r for r in rects if r.top() == rects[0].top()]
        right_gap = wall.viewport().width() - max(r.right() for r in first_row)
        assert rects[0].width() >= TILE_WIDTH
        assert right_gap < TILE_WIDTH // 3, (width, len(first_row), right_gap)
