"""Tests of mouse_lifter_ros.core.bag on small bags written into tmp_path (no ROS)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from fakes import FakeTime
from rosbags.rosbag2 import Reader, Writer
from rosbags.typesys import Stores, get_typestore

from mouse_lifter_ros.core import calibration, images
from mouse_lifter_ros.core.bag import (
    BagReplay,
    ReplayMessage,
    Restamper,
    bag_topics,
    cdr_stamp_ns,
    restamp_cdr,
    write_image_bag,
)
from mouse_lifter_ros.core.errors import InputError, SourceError

TS = get_typestore(Stores.ROS2_JAZZY)
W, H, N, FPS = 32, 24, 10, 20.0
START_NS = 1_700_000_000 * 10**9  # write_image_bag's default first stamp
IMAGE, INFO = "/camera/image_raw", "/camera/camera_info"
IMAGE_T, INFO_T = "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo"


def make_bag(path: Path, storage: Literal["sqlite3", "mcap"] = "sqlite3", n: int = N) -> Path:
    """Frame i is mono8 filled with i * 20, at FPS, each with an (uncalibrated) CameraInfo."""
    info = calibration.camera_info_fields(calibration.uncalibrated(W, H))
    frames = (np.full((H, W), i * 20, np.uint8) for i in range(n))
    written = write_image_bag(path, frames, fps=FPS, encoding="mono8", camera_info=info,
                              storage=storage)
    assert written == n
    return path


@pytest.fixture(params=["sqlite3", "mcap"])
def bag(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return make_bag(tmp_path / f"bag_{request.param}", request.param)


@pytest.fixture(scope="module")
def sqlite_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bag(tmp_path_factory.mktemp("bags") / "bag")


def replay(path: Path, fake: FakeTime, topics: tuple[str, ...] = (IMAGE, INFO),
           **kwargs: Any) -> BagReplay:
    types = {IMAGE: IMAGE_T, INFO: INFO_T}
    return BagReplay(path, topics={t: types[t] for t in topics}, clock=fake.clock,
                     sleep=fake.sleep, **kwargs)


def collect(rep: BagReplay, fake: FakeTime, limit: int | None = None
            ) -> list[tuple[float, ReplayMessage]]:
    """(due time since the start, message) for each message yielded."""
    return [(fake.now - fake.start, msg) for msg in itertools.islice(rep, limit)]


def decode(msg: ReplayMessage) -> Any:
    return TS.deserialize_cdr(msg.data, msg.msgtype)


def frame_value(msg: ReplayMessage) -> int:
    pixels = images.image_to_numpy(decode(msg))
    assert pixels.shape == (H, W)
    assert np.all(pixels == pixels[0, 0])
    return int(pixels[0, 0])


def test_bag_topics(bag: Path) -> None:
    topics = {t.name: t for t in bag_topics(bag)}
    assert set(topics) == {IMAGE, INFO}
    assert topics[IMAGE].msgtype == IMAGE_T and topics[IMAGE].count == N
    assert topics[INFO].msgtype == INFO_T and topics[INFO].count == N


def test_replay_in_recorded_order_at_recorded_times(bag: Path) -> None:
    fake = FakeTime()
    with replay(bag, fake) as rep:
        got = collect(rep, fake)
        assert rep.loops == 0
    assert len(got) == 2 * N
    assert [m.index for _, m in got] == list(range(2 * N))
    recorded = [m.recorded_ns for _, m in got]
    assert recorded == sorted(recorded)
    image_msgs = [(due, m) for due, m in got if m.topic == IMAGE]
    info_msgs = [(due, m) for due, m in got if m.topic == INFO]
    assert len(image_msgs) == len(info_msgs) == N
    assert all(m.msgtype == IMAGE_T for _, m in image_msgs)
    assert all(m.msgtype == INFO_T for _, m in info_msgs)
    for i, ((due, img), (info_due, info)) in enumerate(zip(image_msgs, info_msgs, strict=True)):
        assert frame_value(img) == i * 20
        assert img.recorded_ns == info.recorded_ns == START_NS + round(i * 1e9 / FPS)
        assert due == pytest.approx(i / FPS, abs=1e-9)
        assert info_due == pytest.approx(due, abs=1e-9)
        decoded_info = decode(info)
        assert (decoded_info.width, decoded_info.height) == (W, H)
        # The header stamp is the recorded time, for images and infos alike.
        assert cdr_stamp_ns(img.data) == cdr_stamp_ns(info.data) == img.recorded_ns


def test_rate_scales_the_due_times(sqlite_bag: Path) -> None:
    fake = FakeTime()
    with replay(sqlite_bag, fake, topics=(IMAGE,), rate=2.0) as rep:
        got = collect(rep, fake)
    assert [frame_value(m) for _, m in got] == [i * 20 for i in range(N)]
    dues = [due for due, _ in got]
    assert dues == pytest.approx([i / FPS / 2.0 for i in range(N)], abs=1e-9)
    assert sum(fake.sleeps) == pytest.approx((N - 1) / FPS / 2.0)


def test_due_times_do_not_drift_when_publishing_is_slow(sqlite_bag: Path) -> None:
    """The schedule is fixed: time spent by the caller is not added to it."""
    fake = FakeTime()
    dues = []
    with replay(sqlite_bag, fake, topics=(IMAGE,)) as rep:
        for _msg in rep:
            dues.append(fake.now - fake.start)
            fake.now += 0.01  # the caller takes 10 ms to publish
    assert dues == pytest.approx([i / FPS for i in range(N)], abs=1e-9)


@pytest.mark.parametrize(("offset", "skipped"), [(0.0, 0), (0.2, 4), (0.22, 5), (0.45, 9)])
def test_start_offset(sqlite_bag: Path, offset: float, skipped: int) -> None:
    fake = FakeTime()
    with replay(sqlite_bag, fake, topics=(IMAGE,), start_offset=offset) as rep:
        got = collect(rep, fake)
    assert [frame_value(m) for _, m in got] == [i * 20 for i in range(skipped, N)]
    # The first remaining frame is due at once, the rest keep the recorded spacing.
    assert [due for due, _ in got] == pytest.approx(
        [i / FPS for i in range(N - skipped)], abs=1e-9)


def test_loop(bag: Path) -> None:
    fake = FakeTime()
    with replay(bag, fake, loop=True) as rep:
        got = collect(rep, fake, 25)
        assert rep.loops == 1
        got += collect(rep, fake, 30)  # a new iteration starts the schedule again
    first, second = got[:25], got[25:]
    for part in (first, second):
        dues = [due for due, _ in part]
        assert dues == sorted(dues)
        images_in_part = [(due, m) for due, m in part if m.topic == IMAGE]
        assert [frame_value(m) for _, m in images_in_part] == [
            (k % N) * 20 for k in range(len(images_in_part))]
        assert [m.index for _, m in part] == list(range(len(part)))
    assert rep.loops == 2


def test_loop_keeps_the_recorded_spacing_across_the_seam(bag: Path) -> None:
    fake = FakeTime()
    loops = 3
    with replay(bag, fake, loop=True) as rep:
        got = collect(rep, fake, 2 * N * loops)
        assert rep.loops == loops - 1
    image_dues = [due for due, m in got if m.topic == IMAGE]
    assert len(image_dues) == N * loops
    assert image_dues == pytest.approx([k / FPS for k in range(N * loops)], abs=1e-9)


def test_loop_with_rate(sqlite_bag: Path) -> None:
    fake = FakeTime()
    with replay(sqlite_bag, fake, topics=(IMAGE,), rate=4.0, loop=True) as rep:
        got = collect(rep, fake, 2 * N + 3)
    assert [due for due, _ in got] == pytest.approx(
        [k / FPS / 4.0 for k in range(2 * N + 3)], abs=1e-9)


def test_missing_topic_lists_the_bag_topics(sqlite_bag: Path) -> None:
    with pytest.raises(SourceError) as exc:
        BagReplay(sqlite_bag, topics={IMAGE: IMAGE_T, "/camera/depth": IMAGE_T})
    text = str(exc.value)
    assert "/camera/depth" in text and str(sqlite_bag) in text
    assert IMAGE in text and INFO in text


def test_unsupported_topic_type(tmp_path: Path) -> None:
    path = tmp_path / "strings"
    with Writer(path, version=9) as writer:
        conn = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=TS)
        msg = TS.types["std_msgs/msg/String"](data="hello")
        writer.write(conn, START_NS, TS.serialize_cdr(msg, "std_msgs/msg/String"))
    assert [(t.name, t.msgtype, t.count) for t in bag_topics(path)] == [
        ("/chatter", "std_msgs/msg/String", 1)]
    with pytest.raises(SourceError) as exc:
        BagReplay(path, topics={"/chatter": IMAGE_T})
    assert "/chatter" in str(exc.value) and "std_msgs/msg/String" in str(exc.value)
    with pytest.raises(SourceError, match="cannot replay"):
        BagReplay(path, topics={"/chatter": "std_msgs/msg/String"})


def test_an_image_topic_holding_camera_info_is_refused(sqlite_bag: Path) -> None:
    """Asked to replay the CameraInfo topic as the images: an error that says which topic
    holds what, not a replay whose every frame is skipped downstream."""
    with pytest.raises(SourceError) as exc:
        BagReplay(sqlite_bag, topics={INFO: IMAGE_T})
    text = str(exc.value)
    assert f"topic {INFO!r} holds {INFO_T}, not {IMAGE_T}" in text, text
    assert "image_topic" in text and IMAGE in text


@pytest.mark.parametrize("offset", [0.46, 0.5, 10.0, -0.1])
def test_start_offset_outside_the_bag(sqlite_bag: Path, offset: float) -> None:
    with pytest.raises(SourceError, match="start_offset") as exc:
        BagReplay(sqlite_bag, topics={IMAGE: IMAGE_T}, start_offset=offset)
    assert "0.450 s" in str(exc.value)  # the bag's duration, to choose a better offset


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan"), 1e-300, 1e300, float("inf")])
def test_bad_rate(sqlite_bag: Path, rate: float) -> None:
    with pytest.raises(SourceError, match="rate"):
        BagReplay(sqlite_bag, topics={IMAGE: IMAGE_T}, rate=rate)


def test_not_a_bag(tmp_path: Path) -> None:
    folder = tmp_path / "not_a_bag"
    folder.mkdir()
    (folder / "data.db3").write_bytes(b"")
    missing = tmp_path / "missing"
    for path in (folder, missing):
        with pytest.raises(SourceError) as exc:
            BagReplay(path, topics={IMAGE: IMAGE_T})
        assert str(path) in str(exc.value)
        with pytest.raises(SourceError) as exc:
            bag_topics(path)
        assert str(path) in str(exc.value)


def first_messages(path: Path, count: int) -> list[ReplayMessage]:
    fake = FakeTime()
    with replay(path, fake) as rep:
        return list(itertools.islice(rep, count))


@pytest.mark.parametrize("little_endian", [True, False])
def test_restamp_cdr_changes_only_the_stamp(sqlite_bag: Path, little_endian: bool) -> None:
    [img] = [m for m in first_messages(sqlite_bag, 2) if m.topic == IMAGE]
    original = decode(img)
    data = bytes(TS.serialize_cdr(original, IMAGE_T, little_endian=little_endian))
    assert cdr_stamp_ns(data) == START_NS
    new_ns = 1_234_567_890 * 10**9 + 987_654_321
    out = restamp_cdr(data, new_ns)
    assert isinstance(out, bytes) and len(out) == len(data)
    assert cdr_stamp_ns(out) == new_ns
    assert out[:4] == data[:4] and out[12:] == data[12:]
    back: Any = TS.deserialize_cdr(out, IMAGE_T)
    assert (back.header.stamp.sec, back.header.stamp.nanosec) == (1_234_567_890, 987_654_321)
    assert back.header.frame_id == original.header.frame_id
    assert (back.height, back.width, back.encoding, back.step) == (
        original.height, original.width, original.encoding, original.step)
    assert np.array_equal(back.data, original.data)
    assert cdr_stamp_ns(data) == START_NS  # the input is left alone


def test_restamp_cdr_rejects_other_encapsulations() -> None:
    with pytest.raises(SourceError):
        restamp_cdr(b"\x00\x02\x00\x00" + bytes(8), 5)  # PL_CDR_BE
    with pytest.raises(SourceError):
        restamp_cdr(b"\x00\x01\x00\x00", 5)  # too short for a stamp


def test_restamper_keeps_pairs_together(sqlite_bag: Path) -> None:
    msgs = first_messages(sqlite_bag, 4)
    assert [m.recorded_ns for m in msgs[:2]] == [START_NS] * 2
    assert msgs[2].recorded_ns == msgs[3].recorded_ns > START_NS
    restamp = Restamper()
    t0, t1 = 5_000_000_000, 5_000_100_000
    a, b = restamp(msgs[0], t0), restamp(msgs[1], t0 + 1000)
    c, d = restamp(msgs[2], t1), restamp(msgs[3], t1 + 1000)
    assert cdr_stamp_ns(a) == cdr_stamp_ns(b) == t0  # the twin gets the first's stamp
    assert cdr_stamp_ns(c) == cdr_stamp_ns(d) == t1
    topics = {m.topic for m in msgs}
    assert topics == {IMAGE, INFO}


def test_restamper_on_a_looping_replay(tmp_path: Path) -> None:
    """A short bag replayed in a loop still gets strictly increasing frame stamps."""
    path = make_bag(tmp_path / "short", n=3)
    fake = FakeTime()
    restamp = Restamper()
    stamps: dict[str, list[int]] = {IMAGE: [], INFO: []}
    with replay(path, fake, loop=True) as rep:
        for msg in itertools.islice(rep, 2 * 3 * 4):  # four passes over three frames
            now_ns = round(fake.now * 1e9)
            stamps[msg.topic].append(cdr_stamp_ns(restamp(msg, now_ns)))
    assert len(stamps[IMAGE]) == len(stamps[INFO]) == 12
    assert stamps[IMAGE] == stamps[INFO]  # each image and its info share a stamp
    image_stamps = stamps[IMAGE]
    assert all(b > a for a, b in itertools.pairwise(image_stamps)), image_stamps


def test_write_image_bag_checks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fps"):
        write_image_bag(tmp_path / "b", [np.zeros((2, 2), np.uint8)], fps=0.0, encoding="mono8")
    # Without camera_info only the image topic is written, with bgr8 data kept as is.
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(3)]
    path = tmp_path / "bgr"
    write_image_bag(path, frames, fps=10.0, encoding="bgr8", image_topic="/img",
                    frame_id="cam")
    assert [(t.name, t.count) for t in bag_topics(path)] == [("/img", 3)]
    fake = FakeTime()
    with BagReplay(path, topics={"/img": IMAGE_T}, clock=fake.clock, sleep=fake.sleep) as rep:
        got = list(rep)
    for frame, msg in zip(frames, got, strict=True):
        decoded: Any = decode(msg)
        assert decoded.header.frame_id == "cam" and decoded.encoding == "bgr8"
        assert np.array_equal(images.image_to_numpy(decoded), frame)


MSG_DIR = Path(__file__).resolve().parents[2] / "msg"


def _our_definitions() -> dict[str, str]:
    return {f"mouse_lifter_ros/msg/{p.stem}": p.read_text() for p in MSG_DIR.glob("*.msg")}


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_topic_bag_writer_round_trips_our_messages(tmp_path: Path, storage: str) -> None:
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    from mouse_lifter_ros.core.bag import TopicBagWriter

    defs = _our_definitions()
    store = get_typestore(Stores.ROS2_JAZZY)
    for name, text in defs.items():
        store.register(get_types_from_msg(text, name))
    types = store.types
    bag = tmp_path / "rec_bag"
    topics = {"/ns/pose": "mouse_lifter_ros/msg/Pose3D", "/ns/trigger": "std_msgs/msg/Bool"}
    sent = []
    with TopicBagWriter(bag, topics=topics, definitions=defs, storage=storage) as writer:
        for i in range(5):
            header = types["std_msgs/msg/Header"](
                stamp=types["builtin_interfaces/msg/Time"](sec=100 + i, nanosec=7),
                frame_id="arena")
            point = types["geometry_msgs/msg/Point"](x=0.01 * i, y=-0.02, z=0.03)
            pose = types["geometry_msgs/msg/Pose"](
                position=point, orientation=types["geometry_msgs/msg/Quaternion"](
                    x=0.0, y=0.0, z=0.0, w=1.0))
            msg = types["mouse_lifter_ros/msg/Pose3D"](
                header=header, source_stamp=header.stamp, names=["nose"], positions=[point],
                confidence=np.array([0.5], np.float32), valid=np.array([True]),
                body_pose=pose, residual=np.float32(1.5), surface_height=np.float32(0.02))
            writer.write("/ns/pose", 1_000 + i, store.serialize_cdr(msg, msg.__msgtype__))
            sent.append(0.01 * i)
        flag = types["std_msgs/msg/Bool"](data=True)
        writer.write("/ns/trigger", 2_000, store.serialize_cdr(flag, flag.__msgtype__))
        assert writer.messages == 6
    assert writer.close() == 6  # idempotent
    got = []
    with Reader(bag) as reader:
        assert {c.topic: c.msgtype for c in reader.connections} == topics
        for conn, t, data in reader.messages():
            msg = store.deserialize_cdr(data, conn.msgtype)
            if conn.topic == "/ns/pose":
                got.append(msg.positions[0].x)
                assert msg.names == ["nose"] and msg.header.frame_id == "arena"
                assert msg.surface_height == pytest.approx(0.02)
            else:
                assert msg.data is True and t == 2_000
    assert got == pytest.approx(sent)


def test_topic_bag_writer_names_every_problem(tmp_path: Path) -> None:
    from mouse_lifter_ros.core.bag import TopicBagWriter

    (tmp_path / "taken").mkdir()
    with pytest.raises(InputError) as err:
        TopicBagWriter(tmp_path / "taken", topics={"/a": "no_pkg/msg/Nothing"},
                       definitions={"mouse_lifter_ros/msg/Broken": "int32[ x"})
    text = str(err.value)
    assert "exists" in text and "no_pkg/msg/Nothing" in text and "Broken" in text
    with (TopicBagWriter(tmp_path / "ok", topics={"/t": "std_msgs/msg/Bool"},
                         storage="sqlite3") as writer,
          pytest.raises(InputError, match="/other was not declared")):
        writer.write("/other", 1, b"")
