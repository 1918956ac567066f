"""TensorBoard curves (--log-dir): the event file holds the scalars and texts that were logged."""

import struct

from tensorboardX.proto import event_pb2

from mirrorpo.report.curves import CurveLog, curve_log


def read_events(log_dir):
    """Every Event of the TFRecord event files in ``log_dir`` (length, crc, payload, crc)."""
    events = []
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        data, at = path.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            events.append(event_pb2.Event.FromString(data[at + 12:at + 12 + length]))
            at += 12 + length + 4
    return events


def test_generations_cells_and_tables_reach_the_event_file(tmp_path):
    with curve_log(tmp_path) as log:
        log.generation({"generation": 1, "return_mean": 10.0, "best_return": 12.0, "sigma": 0.03, "return_max": None})
        log.generation({"generation": 2, "return_mean": 11.5, "best_return": 13.0, "sigma": 0.029})
        log.cell({"algo": "dpo", "variant": "base", "mean": 250.0}, 0)
        log.text("bench/leaderboard", "| algorithm | base |")
    scalars = {(v.tag, e.step): v.simple_value for e in read_events(tmp_path) for v in e.summary.value
               if v.HasField("simple_value")}
    assert scalars[("discovery/return_mean", 1)] == 10.0 and scalars[("discovery/return_mean", 2)] == 11.5
    assert scalars[("discovery/best_return", 2)] == 13.0 and ("discovery/return_max", 1) not in scalars
    assert scalars[("bench/base/dpo", 0)] == 250.0
    texts = [v.tag for e in read_events(tmp_path) for v in e.summary.value if v.tag.startswith("bench/leaderboard")]
    assert texts


def test_no_log_dir_writes_nothing(tmp_path):
    log = CurveLog(None)
    log.generation({"generation": 1, "return_mean": 1.0})
    log.close()
    assert list(tmp_path.iterdir()) == []
