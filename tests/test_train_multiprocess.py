"""``reiqa train`` over real ``jax.distributed`` processes on 127.0.0.1.

What a step computes must not depend on how the devices are spread over
processes: with shuffle_bn 'global', 1 process x 2 devices and 2 processes x
1 device give the same losses. A dead peer makes the survivor stop with an
error instead of hanging.
"""
import subprocess
import time

import portpicker
import pytest

import train_testing as tt

# One epoch (3 steps) pins the process split: which images make each step and
# every random draw of it.
EPOCHS = 1


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tt.write_photos(tmp_path_factory.mktemp("photos"), n=10)


def _processes(workdir, data, n, *extra, **config):
    port = portpicker.pick_unused_port()
    procs = []
    for i in range(n):
        cmd = tt.train_cmd(workdir, data, "--coordinator_address", f"127.0.0.1:{port}",
                           "--num_processes", str(n), "--process_id", str(i), *extra, **config)
        procs.append(subprocess.Popen(cmd, env=tt.env(devices=1), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    return procs


def test_two_processes_give_the_losses_of_one_process_with_two_devices(data, tmp_path):
    single = tt.run_train(tmp_path / "single", data, devices=2, shuffle_bn="global",
                          num_epochs=EPOCHS)
    assert single.returncode == 0, single.stderr[-3000:]
    procs = _processes(tmp_path / "multi", data, 2, shuffle_bn="global", num_epochs=EPOCHS)
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert "2 device(s) on 2 process(es)" in outs[0][0]
    a, b = tt.metrics(tmp_path / "single"), tt.metrics(tmp_path / "multi")
    assert [m["step"] for m in a] == [m["step"] for m in b] == list(range(1, 3 * EPOCHS + 1))
    for x, y in zip(a, b):
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-5, abs=1e-6), (x, y)
        assert y["acc"] == pytest.approx(x["acc"], abs=1e-3) and y["lr"] == x["lr"]
    # both processes wrote their part of the checkpoints; the model is exported once
    assert (tmp_path / "multi" / "model" / "reiqa.json").exists()


def test_a_dead_peer_stops_the_survivor(data, tmp_path):
    workdir = tmp_path / "dead"
    # the step compiled by the test above (same shapes and shuffle mode): a cache hit
    procs = _processes(workdir, data, 2, "--heartbeat_timeout", "10", num_epochs=200,
                       checkpoint_every_steps=1000, shuffle_bn="global")
    start = time.time()
    while len(tt.metrics(workdir)) < 2:
        assert procs[0].poll() is None and time.time() - start < 300, procs[0].stderr.read()
        time.sleep(0.1)
    procs[1].kill()
    killed = time.time()
    try:
        procs[0].communicate(timeout=120)
    except subprocess.TimeoutExpired:
        procs[0].kill()
        pytest.fail("the surviving process hung after its peer died")
    assert procs[0].returncode != 0
    assert time.time() - killed < 120
