import ArgumentParser
import Foundation
import MetaQREPL

/// `metaq kernel-json`: the JSON mode the Jupyter kernel relays to (see KernelSession).
struct KernelJSON: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel-json",
        abstract: "Serve one metaq session as JSON lines on standard input and output (used by the Jupyter kernel).")

    func run() throws {
        KernelSession().run()
    }
}

struct Jupyter: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The Jupyter kernel.", subcommands: [JupyterInstall.self])
}

/// Writes the kernelspec: kernel.json and the Python kernel (an ipykernel Kernel that starts
/// `metaq kernel-json` and relays).
struct JupyterInstall: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Install the metaq Jupyter kernelspec (for this user, or under --prefix).",
        discussion: "The kernel runs with the given Python, which needs ipykernel (pip install ipykernel).")

    @Option(help: "Install under PREFIX/share/jupyter/kernels (e.g. a virtual environment) instead of the user's Jupyter folder.")
    var prefix: String?
    @Option(help: "The Python that runs the kernel (it needs ipykernel).") var python = "python3"
    @Option(help: "The kernel's name.") var name = "metaq"

    func run() throws {
        let base: String
        if let prefix {
            base = (prefix as NSString).expandingTildeInPath + "/share/jupyter/kernels"
        } else if let data = ProcessInfo.processInfo.environment["JUPYTER_DATA_DIR"], !data.isEmpty {
            base = data + "/kernels"
        } else {
            #if os(macOS)
            base = NSHomeDirectory() + "/Library/Jupyter/kernels"
            #else
            let xdg = ProcessInfo.processInfo.environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory() + "/.local/share"
            base = xdg + "/jupyter/kernels"
            #endif
        }
        let dir = base + "/" + name
        let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? Bundle.main.executablePath ?? CommandLine.arguments[0]
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let spec: [String: Any] = [
                "argv": [python, dir + "/metaq_kernel.py", "-f", "{connection_file}"],
                "display_name": "metaq",
                "language": "metaq",
                "interrupt_mode": "signal",
                "env": ["METAQ_BINARY": binary],
            ]
            let json = try JSONSerialization.data(withJSONObject: spec, options: [.prettyPrinted, .sortedKeys])
            try json.write(to: URL(fileURLWithPath: dir + "/kernel.json"))
            try Data(kernelSource.utf8).write(to: URL(fileURLWithPath: dir + "/metaq_kernel.py"))
        } catch {
            throw ValidationError("cannot install the kernelspec in \(dir): \(error.localizedDescription)")
        }
        print("installed the metaq kernel in \(dir) (Python: \(python), metaq: \(binary))")
    }
}

/// The Python side of the kernel: relays Jupyter's requests to `metaq kernel-json`.
let kernelSource = #"""
"""metaq Jupyter kernel: relays to `metaq kernel-json` (written by `metaq jupyter install`)."""
import json
import os
import signal
import subprocess
import sys

from ipykernel.kernelapp import IPKernelApp
from ipykernel.kernelbase import Kernel


class MetaqKernel(Kernel):
    implementation = "metaq"
    implementation_version = "0.1.0"
    language = "metaq"
    language_version = "0.1.0"
    language_info = {"name": "metaq", "mimetype": "text/x-metaq", "file_extension": ".mq"}
    banner = "metaq: a language for meta-learning"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        binary = os.environ.get("METAQ_BINARY", "metaq")
        self.child = subprocess.Popen([binary, "kernel-json"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True, encoding="utf-8", bufsize=1)
        self.next_id = 0

    def request(self, message):
        """Sends one request; yields its replies until the last one for it."""
        self.next_id += 1
        message["id"] = self.next_id
        self.child.stdin.write(json.dumps(message) + "\n")
        self.child.stdin.flush()
        while True:
            try:
                line = self.child.stdout.readline()
            except KeyboardInterrupt:
                # Jupyter's interrupt: the child stops at its next step and replies.
                self.child.send_signal(signal.SIGINT)
                continue
            if not line:
                raise RuntimeError("metaq kernel-json ended (exit status %s)" % self.child.poll())
            reply = json.loads(line)
            if reply.get("id") != self.next_id:
                continue
            yield reply
            if reply["type"] in ("done", "complete_reply", "inspect_reply"):
                return

    def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False, **kwargs):
        error = None
        self.progress_id = None
        # Jupyter interrupts with SIGINT: while the cell runs, pass it on to metaq (which stops
        # at its next step and replies) instead of raising KeyboardInterrupt wherever this
        # process happens to be, which could lose the cell's last replies or the relay itself.
        try:
            previous = signal.signal(signal.SIGINT, lambda signum, frame: self.child.send_signal(signal.SIGINT))
        except ValueError:  # not the main thread: the KeyboardInterrupt handling below serves
            previous = None
        try:
            replies = self.request({"type": "execute", "code": code})
            while True:
                try:
                    reply = next(replies)
                except StopIteration:
                    break
                try:
                    self.forward(reply, silent)
                except KeyboardInterrupt:
                    self.child.send_signal(signal.SIGINT)
                if reply["type"] == "error":
                    error = reply
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        if error is not None:
            return {"status": "error", "execution_count": self.execution_count, "ename": error["ename"],
                    "evalue": error["evalue"], "traceback": error["traceback"]}
        return {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}

    def forward(self, reply, silent):
        """Relays one reply of a running cell to the notebook."""
        kind = reply["type"]
        if silent:
            pass
        elif kind == "stream":
            self.send_response(self.iopub_socket, "stream", {"name": reply["name"], "text": reply["text"]})
        elif kind == "display":
            self.send_response(self.iopub_socket, "display_data", {"data": reply["data"], "metadata": {}})
        elif kind == "progress":
            content = {"data": {"text/plain": reply["text"]}, "metadata": {}}
            if self.progress_id is None:
                self.progress_id = "metaq-progress-%d" % self.next_id
                content["transient"] = {"display_id": self.progress_id}
                self.send_response(self.iopub_socket, "display_data", content)
            else:
                content["transient"] = {"display_id": self.progress_id}
                self.send_response(self.iopub_socket, "update_display_data", content)
        if kind == "error" and not silent:
            self.send_response(self.iopub_socket, "error", {"ename": reply["ename"], "evalue": reply["evalue"],
                                                           "traceback": reply["traceback"]})

    def do_complete(self, code, cursor_pos):
        for reply in self.request({"type": "complete", "code": code, "cursor": cursor_pos}):
            if reply["type"] == "complete_reply":
                return {"status": "ok", "matches": reply["matches"], "cursor_start": reply["cursor_start"],
                        "cursor_end": reply["cursor_end"], "metadata": {}}
        return {"status": "ok", "matches": [], "cursor_start": cursor_pos, "cursor_end": cursor_pos, "metadata": {}}

    def do_inspect(self, code, cursor_pos, detail_level=0, omit_sections=()):
        for reply in self.request({"type": "inspect", "code": code, "cursor": cursor_pos}):
            if reply["type"] == "inspect_reply":
                data = {"text/plain": reply["text"]} if reply["found"] else {}
                return {"status": "ok", "found": reply["found"], "data": data, "metadata": {}}
        return {"status": "ok", "found": False, "data": {}, "metadata": {}}

    def do_shutdown(self, restart):
        try:
            self.child.stdin.close()
            self.child.wait(timeout=5)
        except Exception:
            self.child.kill()
        return {"status": "ok", "restart": restart}


if __name__ == "__main__":
    IPKernelApp.launch_instance(kernel_class=MetaqKernel)
"""#
