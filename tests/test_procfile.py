"""shop.procfile: reading the Procfile, expanding variables, and running processes together.

No database: these tests only start short `python -c` processes.
"""

import os
import select
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shop import procfile

ROOT = Path(__file__).resolve().parent.parent
PYTHON = shlex.quote(sys.executable)


def write_procfile(tmp_path: Path, entries: dict[str, str]) -> Path:
    path = tmp_path / "Procfile"
    path.write_text("".join(f"{name}: {command}\n" for name, command in entries.items()))
    return path


def py(code: str) -> str:
    """A one-line Procfile command running (possibly multi-line) `code` in this interpreter."""
    return f"{PYTHON} -c {shlex.quote(f'exec({code!r})')}"


def run_runner(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shop.procfile", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"
    except FileNotFoundError:
        return False


# --- parsing ----------------------------------------------------------------------------------


def test_parse_keeps_order_and_skips_comments_and_blank_lines():
    text = (
        "# processes\n\n"
        "web: gunicorn app --bind ${WEB_BIND:-127.0.0.1:8000}\n"
        "  \n"
        "worker:celery -A x\n"
    )
    assert procfile.parse(text) == {
        "web": "gunicorn app --bind ${WEB_BIND:-127.0.0.1:8000}",
        "worker": "celery -A x",
    }
    assert list(procfile.parse(text)) == ["web", "worker"]


@pytest.mark.parametrize("text", ["just a command\n", "web:\n", "web: a\nweb: b\n"])
def test_parse_rejects_malformed_lines_and_duplicates(text):
    with pytest.raises(procfile.ProcfileError):
        procfile.parse(text)


def test_commands_reads_the_given_file(tmp_path):
    path = write_procfile(tmp_path, {"one": "echo 1", "two": "echo ${X:-2}"})
    assert procfile.commands(path) == {"one": "echo 1", "two": "echo ${X:-2}"}


def test_commands_of_a_missing_procfile_is_a_clear_error(tmp_path):
    with pytest.raises(procfile.ProcfileError, match="no Procfile"):
        procfile.commands(tmp_path / "Procfile")


WORKERS = ["worker-default", "worker-email", "worker-inventory", "worker-payment"]


def test_project_procfile_has_web_asgi_a_worker_per_queue_the_stubs_beat_and_relay():
    entries = procfile.commands(ROOT / "Procfile")
    assert list(entries) == [
        "web", "asgi", *WORKERS, "gateway", "smtp", "carriers", "beat", "relay",
    ]  # fmt: skip
    assert entries["asgi"].startswith("uvicorn config.asgi:application ")
    assert entries["carriers"].startswith("python manage.py carrier_stubs ")
    assert entries["relay"] == "python manage.py outbox_relay"
    assert entries["beat"].startswith("celery -A config beat ")
    assert entries["gateway"].startswith("python manage.py payment_gateway_stub ")
    assert entries["smtp"].startswith("python manage.py smtp_sink ")
    assert entries["web"].startswith("gunicorn config.wsgi:application ")
    for name in WORKERS:
        assert entries[name].startswith("celery -A config worker "), name
    assert procfile.commands() == entries  # the default path finds the same file


# --- expansion --------------------------------------------------------------------------------


def test_expand_uses_the_default_when_unset():
    assert procfile.expand("--bind ${WEB_BIND:-127.0.0.1:8000}", {}) == "--bind 127.0.0.1:8000"


def test_expand_uses_the_environment_when_set():
    env = {"WEB_BIND": "0.0.0.0:9000"}
    assert procfile.expand("--bind ${WEB_BIND:-127.0.0.1:8000}", env) == "--bind 0.0.0.0:9000"


def test_expand_colon_dash_treats_empty_as_unset_but_dash_does_not():
    assert procfile.expand("${A:-x}", {"A": ""}) == "x"
    assert procfile.expand("${A-x}", {"A": ""}) == ""
    assert procfile.expand("${A-x}", {}) == "x"


def test_expand_plain_forms_and_unset_without_default():
    env = {"A": "1", "B_2": "two"}
    assert procfile.expand("$A ${B_2} ${MISSING}$MISSING end", env) == "1 two  end"
    assert procfile.expand("no variables: 100% $ {x}", env) == "no variables: 100% $ {x}"


def test_expand_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("PROCFILE_TEST_VALUE", "from-env")
    monkeypatch.delenv("PROCFILE_TEST_UNSET", raising=False)
    command = "${PROCFILE_TEST_VALUE:-d1} ${PROCFILE_TEST_UNSET:-d2}"
    assert procfile.expand(command) == "from-env d2"


def test_argv_for_splits_after_expanding():
    command = "gunicorn app --bind ${BIND:-127.0.0.1:8000} --workers ${N:-4} --name 'a b'"
    assert procfile.argv_for(command, {"N": "8"}) == [
        "gunicorn", "app", "--bind", "127.0.0.1:8000", "--workers", "8", "--name", "a b",
    ]  # fmt: skip


def test_project_commands_expand_to_their_defaults():
    entries = procfile.commands(ROOT / "Procfile")
    web = procfile.argv_for(entries["web"], {})
    assert web[web.index("--bind") + 1] == "127.0.0.1:8000"
    assert web[web.index("--workers") + 1] == "4"
    for name in WORKERS:
        queue = name.removeprefix("worker-")
        variable = f"WORKER_{queue.upper()}_CONCURRENCY"
        worker = procfile.argv_for(entries[name], {variable: "3"})
        assert worker[worker.index("--concurrency") + 1] == "3", name
        assert worker[worker.index("--queues") + 1] == queue  # one queue each, every queue read
        assert worker[worker.index("--hostname") + 1] == f"{queue}@%h"
    from django.conf import settings

    assert sorted(name.removeprefix("worker-") for name in WORKERS) == sorted(
        settings.CELERY_QUEUE_NAMES
    )
    asgi = procfile.argv_for(entries["asgi"], {})
    assert (asgi[asgi.index("--host") + 1], asgi[asgi.index("--port") + 1]) == ("127.0.0.1", "8001")


def test_child_environment_puts_this_interpreters_bin_dir_first():
    env = procfile.child_environment({"PATH": "/usr/bin:/bin"})
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    assert env["PYTHONUNBUFFERED"] == "1"


# --- exec (the Docker entrypoint) -------------------------------------------------------------


class Exec(Exception):
    def __init__(self, file, argv, env):
        super().__init__(file)
        self.file, self.argv, self.env = file, argv, env


def fake_execvpe(file, argv, env):
    raise Exec(file, argv, env)


def test_exec_a_procfile_entry_by_name(tmp_path, monkeypatch):
    path = write_procfile(tmp_path, {"web": "gunicorn app --bind ${WEB_BIND:-127.0.0.1:8000}"})
    monkeypatch.setenv("WEB_BIND", "0.0.0.0:8000")
    with pytest.raises(Exec) as called:
        procfile.exec_command(["web"], procfile=path, execvpe=fake_execvpe)
    assert called.value.argv == ["gunicorn", "app", "--bind", "0.0.0.0:8000"]
    assert called.value.env["WEB_BIND"] == "0.0.0.0:8000"


def test_exec_arguments_expands_each_one(tmp_path, monkeypatch):
    monkeypatch.delenv("WEB_BIND", raising=False)
    args = ["gunicorn", "app", "--bind", "${WEB_BIND:-127.0.0.1:8000}"]
    with pytest.raises(Exec) as called:
        procfile.exec_command(args, procfile=tmp_path / "Procfile", execvpe=fake_execvpe)
    assert called.value.argv == ["gunicorn", "app", "--bind", "127.0.0.1:8000"]


def test_exec_a_single_word_that_is_not_an_entry_runs_it_as_a_command(tmp_path):
    path = write_procfile(tmp_path, {"web": "gunicorn app"})
    with pytest.raises(Exec) as called:
        procfile.exec_command(["bash"], procfile=path, execvpe=fake_execvpe)
    assert called.value.argv == ["bash"]


# --- running ----------------------------------------------------------------------------------


def test_prefixes_output_and_stops_everything_when_one_fails(tmp_path):
    pidfile = tmp_path / "long.pid"
    long_running = py(
        "import os, sys, time\n"
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
        "print('hello from long'); print('to stderr', file=sys.stderr)\n"
        "time.sleep(60)\n"
    )
    failing = py(
        "import os, sys, time\n"
        "deadline = time.time() + 10\n"
        f"while not os.path.exists({str(pidfile)!r}) and time.time() < deadline:\n"
        "    time.sleep(0.05)\n"
        "time.sleep(0.2)\n"
        "print('giving up')\n"
        "sys.exit(3)\n"
    )
    path = write_procfile(tmp_path, {"long": long_running, "fail": failing})

    started = time.monotonic()
    result = run_runner("--procfile", str(path), "--timeout", "5")
    elapsed = time.monotonic() - started

    assert result.returncode == 3, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "long     | hello from long" in lines
    assert "long     | to stderr" in lines
    assert "fail     | giving up" in lines
    assert "procfile | fail exited with code 3" in lines
    assert "procfile | sending SIGTERM to long" in lines
    assert elapsed < 20
    assert not pid_alive(int(pidfile.read_text()))


def test_a_process_ignoring_sigterm_is_killed_after_the_timeout(tmp_path):
    ready = tmp_path / "ready"
    stubborn = py(
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(ready)!r}, 'w').close()\n"
        "time.sleep(60)\n"
    )
    quitter = py(
        f"import os, time\nwhile not os.path.exists({str(ready)!r}):\n    time.sleep(0.05)\n"
    )
    path = write_procfile(tmp_path, {"stubborn": stubborn, "quitter": quitter})

    started = time.monotonic()
    result = run_runner("--procfile", str(path), "--timeout", "0.5")

    assert time.monotonic() - started < 20
    assert result.returncode == 128 + signal.SIGKILL, result.stdout + result.stderr
    assert "procfile | quitter exited with code 0" in result.stdout
    assert "procfile | stubborn still running: sending SIGKILL" in result.stdout


def test_sigterm_stops_all_processes_cleanly(tmp_path):
    sleeper = py("import time; print('ready'); time.sleep(60)")
    path = write_procfile(tmp_path, {"a": sleeper, "b": sleeper})
    runner = subprocess.Popen(
        [sys.executable, "-m", "shop.procfile", "--procfile", str(path), "--timeout", "5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        # Raw reads, so nothing sits in a Python buffer that select() cannot see.
        fd = runner.stdout.fileno()
        seen = b""
        deadline = time.monotonic() + 15
        while not (b"a        | ready" in seen and b"b        | ready" in seen):
            assert time.monotonic() < deadline, seen
            readable, _, _ = select.select([fd], [], [], 0.5)
            if readable:
                chunk = os.read(fd, 65536)
                assert chunk, seen
                seen += chunk
        runner.send_signal(signal.SIGTERM)
        rest, _ = runner.communicate(timeout=15)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    output = (seen + rest).decode()
    assert runner.returncode == 0, output
    assert "procfile | received SIGTERM" in output
    assert "procfile | a stopped (signal SIGTERM)" in output
    assert "procfile | b stopped (signal SIGTERM)" in output


def test_only_runs_the_named_processes(tmp_path):
    path = write_procfile(
        tmp_path, {"one": py("print('one ran')"), "two": py("print('two ran'); exit(5)")}
    )
    result = run_runner("--procfile", str(path), "--only", "one")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "one      | one ran" in result.stdout
    assert "two ran" not in result.stdout

    result = run_runner("--procfile", str(path), "--only", "one,nope")
    assert result.returncode == 2
    assert "no process named nope" in result.stderr


def test_a_command_that_cannot_start_stops_the_others(tmp_path):
    path = write_procfile(
        tmp_path,
        {
            "sleeper": py("import time; time.sleep(60)"),
            "missing": "perfshop-no-such-command-anywhere --flag",
        },
    )
    started = time.monotonic()
    result = run_runner("--procfile", str(path), "--timeout", "5")
    assert time.monotonic() - started < 20
    assert result.returncode == 127, result.stdout + result.stderr
    assert "procfile | missing could not start" in result.stdout
    assert "procfile | sleeper stopped" in result.stdout
