"""shop/smtp_sink.py: a real SMTP server on loopback that keeps each message as an .eml file."""

import smtplib

from django.core.mail import get_connection, send_mail

from shop import smtp_sink


def test_every_message_is_kept_in_order_as_sent(tmp_path):
    with smtp_sink.running(tmp_path / "mail") as sink:
        connection = get_connection(
            "django.core.mail.backends.smtp.EmailBackend", host=sink.host, port=sink.port
        )
        for n in range(3):
            send_mail(f"subject {n}", f"body {n}", "a@perfshop.local", ["b@example.com"],
                      connection=connection)  # fmt: skip
        received = sink.messages()
    assert [message["Subject"] for message in received] == ["subject 0", "subject 1", "subject 2"]
    assert received[2].get_content().strip() == "body 2"
    assert received[0]["To"] == "b@example.com"
    assert not list((tmp_path / "mail").glob(".*.part"))


def test_the_sink_stops_with_its_block(tmp_path):
    with smtp_sink.running(tmp_path / "mail") as sink:
        port = sink.port
    try:
        smtplib.SMTP("127.0.0.1", port, timeout=2)
    except OSError:
        return
    raise AssertionError("the sink still answers after its block")


def test_the_delay_is_spent_before_the_message_is_accepted(tmp_path, monkeypatch):
    # What the bench's 50 ms SMTP target relies on: the sink waits before its 250, so the sender
    # waits too. The waits are recorded instead of timed.
    waits = []
    real_sleep = smtp_sink.asyncio.sleep

    async def recorded_sleep(seconds):
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(smtp_sink.asyncio, "sleep", recorded_sleep)
    with smtp_sink.running(tmp_path / "mail", delay_ms=50) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.sendmail("a@perfshop.local", ["b@example.com"], b"Subject: slow\r\n\r\nbody\r\n")
            client.sendmail("a@perfshop.local", ["b@example.com"], b"Subject: slow\r\n\r\nbody\r\n")
        assert len(sink.messages()) == 2
    assert waits.count(0.05) == 2


def test_the_command_serves_until_stopped_and_stands_by_when_a_sink_answers(tmp_path):
    """`manage.py smtp_sink`, the Procfile's `smtp` line: a second one on the same port (as when
    `make serve` runs after `devstack up` started the stack's) waits instead of failing."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    from shop.devstack.smtp import smtp_ping

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = smtp_sink.__file__.rsplit("/shop/", 1)[0]

    def start(folder):
        return subprocess.Popen(
            [sys.executable, "manage.py", "smtp_sink", "--port", str(port), "--dir", str(folder)],
            cwd=root, env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    first = start(tmp_path / "first")
    second = None
    try:
        deadline = time.monotonic() + 30
        while not smtp_ping(port):
            assert first.poll() is None and time.monotonic() < deadline, first.stdout.read()
            time.sleep(0.1)
        second = start(tmp_path / "second")
        assert "standing by" in second.stdout.readline()
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            client.sendmail("a@perfshop.local", ["b@example.com"], b"Subject: cmd\r\n\r\nx\r\n")
        assert [m["Subject"] for m in smtp_sink.messages(tmp_path / "first")] == ["cmd"]
        assert second.poll() is None
    finally:
        for process in (first, second):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=15)
