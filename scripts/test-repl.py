#!/usr/bin/env python3
"""Drives the metaq REPL in a real pseudo-terminal, as a person at a keyboard would, and
checks what appears on the screen. Used by scripts/test.sh; needs a built metaq (pass its
path as the first argument, default .build/debug/metaq). Python standard library only.

Prints "ok   NAME" or "FAIL NAME" per check, then "repl: N passed, M failed". Every wait has
a timeout, so a hung REPL fails a check instead of hanging the run.
"""
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time

METAQ = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".build/debug/metaq")
PROMPT = rb"metaq> "
CONTINUATION = rb"  \.\.\.> "
TIMEOUT = 30  # seconds for one expected output (a debug build starts slowly on a busy machine)


class Timeout(Exception):
    pass


class Session:
    """One metaq process on a pseudo-terminal of 120x40 characters."""

    def __init__(self, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execve(METAQ, [METAQ], env)
            finally:
                os._exit(127)  # only reached when metaq cannot be started
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.screen = b""  # everything the terminal received
        self.seen = 0  # how much of it earlier expectations consumed
        self.status = None

    def send(self, text):
        os.write(self.fd, text.encode() if isinstance(text, str) else text)

    def _read(self, until):
        readable, _, _ = select.select([self.fd], [], [], max(0.0, min(0.1, until - time.time())))
        if not readable:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # the process ended and the terminal closed
            return False
        if not data:
            return False
        self.screen += data
        return True

    def expect(self, pattern, timeout=TIMEOUT):
        """Waits for `pattern` (a bytes regex) after what earlier expectations consumed;
        returns the match and consumes up to its end."""
        until = time.time() + timeout
        while True:
            match = re.compile(pattern).search(self.screen, self.seen)
            if match:
                self.seen = match.end()
                return match
            if time.time() >= until or not self._read(until):
                tail = self.screen[self.seen:][-600:]
                raise Timeout(f"no /{pattern.decode()}/ within {timeout} s; the screen ends with {tail!r}")

    def pending(self, seconds):
        """Reads for `seconds` and returns what arrived since the last expectation."""
        until = time.time() + seconds
        while time.time() < until and self._read(until):
            pass
        return self.screen[self.seen:]

    def wait_exit(self, timeout=TIMEOUT):
        until = time.time() + timeout
        while time.time() < until:
            self._read(until)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
        raise Timeout(f"metaq did not exit within {timeout} s")

    def close(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except ProcessLookupError:
                pass
            self.status = -9
        os.close(self.fd)


work = tempfile.mkdtemp(prefix="metaq-repl-test-")
history_path = os.path.join(work, "history")
environment = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOME": work,
    "TERM": "xterm",
    "LANG": "C.UTF-8",
    "METAQ_HISTORY": history_path,
}
passes, failures = 0, 0


def check(name, body):
    global passes, failures
    try:
        body()
    except Exception as error:  # a timeout, a failed assertion, or the REPL gone
        failures += 1
        print(f"FAIL {name}: {error}")
    else:
        passes += 1
        print(f"ok   {name}")
    sys.stdout.flush()


first = Session(environment)


def starts():
    first.expect(rb"metaq 0\.1\.0")
    first.expect(PROMPT)


def multi_line_block():
    first.send("model net = mlp <\r")
    first.expect(CONTINUATION)
    first.send("in 1 hidden [8] out 1\r")
    first.expect(CONTINUATION)
    first.send(">\r")
    first.expect(PROMPT)
    first.send("print net\r")
    first.expect(rb"model mlp: linear\(1->8\) -> relu -> linear\(8->1\) \(25 parameters\)")
    first.expect(PROMPT)


def tab_completes_a_block_key():
    first.send("learner m = maml < model net inner < st\t")
    first.expect(rb"eps ")  # what completion typed after "st"
    first.send("1 lr 0.01 > outer < batch 2 > >\r")
    first.expect(PROMPT)
    first.send(":history 2\r")  # the entry, then this command
    first.expect(rb"\d+  learner m = maml < model net inner < steps 1 lr 0\.01 > outer < batch 2 > >")
    first.expect(PROMPT)


def error_then_success():
    first.send("print undefined_name + 1\r")
    first.expect(rb"<repl:\d+>:1:7: error: [^\r\n]*undefined_name")
    first.expect(rb"print undefined_name \+ 1\r\n      \^~~~~~~~~~~~~")
    first.expect(PROMPT)
    first.send("print 40 + 2\r")
    first.expect(rb"\r\n42\r\n")
    first.expect(PROMPT)


def typing_utf8():
    first.send('print "π ≈ 3.14, café"\r')
    first.expect("\r\nπ ≈ 3.14, café\r\n".encode())
    first.expect(PROMPT)


def ctrl_c_interrupts_training():
    first.send("tasks sine = sinusoid < support 5 query 5 >\r")
    first.expect(PROMPT)
    first.send("train m on sine < iters 1000000 >\r")
    first.expect(rb"train maml \[")  # the progress bar: training runs
    time.sleep(1)
    first.send("\x03")
    done = int(first.expect(rb"interrupted after (\d+) of 1000000 iterations").group(1))
    assert done > 0, "no iteration ran"
    first.expect(PROMPT, timeout=10)
    first.send("print m.iterations\r")
    trained = int(first.expect(rb"\r\n(\d+)\r\n").group(1))
    assert trained == done, f"the learner has {trained} iterations, training stopped after {done}"
    first.send("print net.parameters * 2\r")
    first.expect(rb"\r\n50\r\n")
    first.expect(PROMPT)


def ctrl_c_stops_a_loop_and_an_evaluation():
    first.send("var n = 0\r")
    first.expect(PROMPT)
    first.send("while true { n = n + 1 }\r")
    time.sleep(1)
    first.send("\x03")
    first.expect(rb"error: interrupted\r\n")
    first.expect(PROMPT, timeout=10)
    first.send("let r = eval m on sine < tasks 10000000 steps [1] >\r")
    time.sleep(1)
    first.send("\x03")
    first.expect(rb"error: interrupted after \d+ of 10000000 tasks")
    first.expect(PROMPT, timeout=10)
    first.send("print n > 0\r")
    first.expect(rb"\r\ntrue\r\n")
    first.expect(PROMPT)


def ctrl_c_clears_the_line():
    first.send("this line is dropped")
    first.expect(rb"dropped")
    first.send("\x03")
    first.expect(rb"\^C\r\n")
    first.expect(PROMPT)
    dropped = first.seen
    first.send("print 6 * 7\r")
    first.expect(rb"\r\n42\r\n")
    first.expect(PROMPT)
    assert b"error" not in first.screen[dropped:first.seen], "the dropped line ran"


def ctrl_d_exits():
    first.send('print "remember me"\r')
    first.expect(rb"\r\nremember me\r\n")
    first.expect(PROMPT)
    first.send("\x04")
    status = first.wait_exit()
    assert status == 0, f"exit status {status}"


check("the REPL starts with a banner and a prompt", starts)
check("a multi-line block continues until it closes", multi_line_block)
check("tab completes a block key", tab_completes_a_block_key)
check("an error prints a caret, then a statement succeeds", error_then_success)
check("UTF-8 text is typed and printed whole", typing_utf8)
check("Ctrl-C stops training at a step and keeps the session", ctrl_c_interrupts_training)
check("Ctrl-C stops a long loop and a long evaluation", ctrl_c_stops_a_loop_and_an_evaluation)
check("Ctrl-C at the prompt drops the line", ctrl_c_clears_the_line)
check("Ctrl-D exits with status 0", ctrl_d_exits)
first.close()


def history_file_is_written():
    with open(history_path, encoding="utf-8") as history:
        lines = history.read().splitlines()
    assert "model net = mlp <\\nin 1 hidden [8] out 1\\n>" in lines, f"no escaped multi-line entry in {lines}"
    assert lines[-1] == 'print "remember me"', f"last entry {lines[-1]!r}"
    assert len(lines) == len(set(lines)), "repeated entries"


check("history is saved, one line per entry", history_file_is_written)

second = Session(environment)


def history_recall_after_restart():
    second.expect(PROMPT)
    second.send("\x1b[A")  # up arrow
    second.expect(rb'print "remember me"')
    second.send("\r")
    second.expect(rb"\r\nremember me\r\n")
    second.expect(PROMPT)
    second.send("\x12mlp")  # Ctrl-R: search the history
    second.expect(rb"bck:mlp")
    second.send("\r")
    second.expect(PROMPT)
    second.send("print net.parameters\r")
    second.expect(rb"\r\n25\r\n")
    second.expect(PROMPT)
    second.send(":quit\r")
    assert second.wait_exit() == 0


check("the up arrow and Ctrl-R recall history after a restart", history_recall_after_restart)
second.close()

dumb = Session(dict(environment, TERM="dumb", METAQ_HISTORY=""))


def dumb_terminal_reads_plain_lines():
    dumb.expect(PROMPT)
    dumb.send("let x = [1,\r")
    dumb.expect(CONTINUATION)
    dumb.send("2]\r")
    dumb.expect(PROMPT)
    dumb.send("print x\r")
    dumb.expect(rb"\[1, 2\]")
    dumb.expect(PROMPT)
    dumb.send("let y = [\r")
    dumb.expect(CONTINUATION)
    dumb.send("\x03")  # Ctrl-C drops the unfinished entry
    dumb.expect(PROMPT)
    dumb.send("print len(x)\r")
    dumb.expect(rb"\r\n2\r\n")
    dumb.expect(PROMPT)
    dumb.send("\x04")
    assert dumb.wait_exit() == 0
    assert b"\x1b" not in dumb.screen, "escape codes on a dumb terminal"


check("TERM=dumb reads plain lines with prompts", dumb_terminal_reads_plain_lines)
dumb.close()


def piped_input_runs_as_a_script():
    run = subprocess.run([METAQ], input=b"let x = 2\nmodel n = mlp <\n  in 1 out 1\n>\nprint x * 21\n",
                         capture_output=True, env=environment, timeout=TIMEOUT)
    assert run.returncode == 0, f"exit status {run.returncode}: {run.stderr!r}"
    assert run.stdout == b"42\n", f"output {run.stdout!r}"
    assert run.stderr == b"", f"errors {run.stderr!r}"
    failed = subprocess.run([METAQ], input=b"print 1\nprint nope\n", capture_output=True, env=environment, timeout=TIMEOUT)
    assert failed.returncode == 1, f"exit status {failed.returncode} after an error"
    assert failed.stdout == b"1\n", f"output {failed.stdout!r}"
    assert b"<stdin>:2:7: error:" in failed.stderr, f"errors {failed.stderr!r}"
    for output in (run.stdout, run.stderr, failed.stdout, failed.stderr):
        assert b"metaq>" not in output and b"\x1b" not in output, f"prompt or escape code in {output!r}"


check("piped input runs as a script, without prompts or escape codes", piped_input_runs_as_a_script)

print(f"repl: {passes} passed, {failures} failed")
sys.exit(1 if failures else 0)
