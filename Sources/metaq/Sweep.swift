import ArgumentParser
import Foundation
import MetaQLanguage

/// Set by SIGINT while a sweep runs (a signal handler may only set a flag).
nonisolated(unsafe) private var sweepInterrupted: sig_atomic_t = 0

struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a script once for every combination of swept values, a few processes at a time.",
        discussion: """
            Each configuration is a 'metaq run --json --quiet --set KEY=VALUE ...' of its own, started \
            in its own folder OUT/ID (with an empty out/ inside, so that a script's relative paths such \
            as "out/results.csv" land there; give data folders as absolute paths). Its standard output \
            and error go to OUT/ID/stdout.log and stderr.log. A finished run leaves OUT/ID/done; running \
            the sweep again skips those. OUT/results.csv gets one row per configuration (its values, \
            status, seconds and every result it printed: numbers, 'name: number' lines, records and \
            evaluation reports); OUT/files.csv stacks the rows of every CSV file the runs wrote, each \
            with its configuration. Ctrl-C stops every run and writes the tables of what finished.
            """)

    @ArgumentParser.Argument(help: "The script to run.") var file: String
    @Option(name: .customLong("grid"), help: ArgumentHelp("A key and the list of its values: lr=[0.001, 0.01] (repeatable; every combination runs).", valueName: "key=[values]"))
    var grids: [String] = []
    @Option(name: .customLong("set"), help: ArgumentHelp("A fixed override for every run, as in 'metaq run'.", valueName: "key=value"))
    var overrides: [String] = []
    @Option(help: "Runs at the same time (default: the number of cores).") var jobs: Int?
    @Option(help: "The sweep's folder (default: out/sweep-NAME, NAME the script's name).") var out: String?
    @Option(help: "Passed to every run: seed the random generator before the script runs.") var seed: UInt64?
    @Option(help: "Run only the configuration with this index (0-based; what a Slurm array task runs).") var index: Int?
    @Option(help: ArgumentHelp("Write a Slurm batch script that runs the configurations as an array job, then stop.", valueName: "file.sh"))
    var slurm: String?

    func run() throws {
        let grid: SweepGrid
        do { grid = try SweepGrid(parsing: grids) } catch { throw ValidationError(error.description) }
        _ = try parseOverrides(overrides)
        for key in grid.keys where overrides.contains(where: { $0.split(separator: "=", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } == key }) {
            throw ValidationError("'\(key)' is both swept (--grid) and fixed (--set)")
        }
        if let jobs, jobs < 1 || jobs > 1024 { throw ValidationError("--jobs must be between 1 and 1024, got \(jobs)") }
        guard file != "-" else { throw ValidationError("a sweep runs the script many times: give a file, not standard input") }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isFolder), !isFolder.boolValue else {
            throw ValidationError("cannot read \(file): \(isFolder.boolValue ? "it is a folder" : "no such file")")
        }
        let script = URL(fileURLWithPath: file).standardizedFileURL.path
        // A key that matches nothing would fail every run: refused before any starts.
        let checker = Interpreter(output: SilentOutput())
        checker.overrides = try parseOverrides(overrides + grid.configurations[0].overrides.map { "\($0.key)=\($0.value)" })
        if let source = try? readScript(file), let key = checker.unmatchedOverrides(in: source)?.first {
            throw ValidationError("\(grid.keys.contains(key) ? "--grid" : "--set") \(key): no top-level 'let', 'var' or declaration key '\(key)' in \(file)")
        }
        let name = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        let root = URL(fileURLWithPath: out ?? "out/sweep-\(name)").standardizedFileURL.path
        let configurations = grid.configurations
        if let index, !(0..<configurations.count).contains(index) {
            throw ValidationError("--index \(index) is out of range: the grid has \(configurations.count) configurations (0...\(configurations.count - 1))")
        }
        do { try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true) } catch {
            throw ValidationError("cannot make the sweep's folder \(root): \(error.localizedDescription)")
        }
        if let slurm {
            try writeSlurm(to: slurm, script: script, root: root, count: configurations.count)
            print("wrote \(slurm): sbatch \(slurm) runs the \(configurations.count) configurations; then 'metaq sweep' with the same arguments (without --slurm) collects the tables")
            return
        }
        let selected = index.map { [configurations[$0]] } ?? configurations
        let runner = SweepRunner(script: script, root: root, keys: grid.keys, fixed: overrides, seed: seed,
                                 jobs: jobs ?? ProcessInfo.processInfo.activeProcessorCount)
        let status = runner.run(selected, all: configurations)
        if status != 0 { throw ExitCode(status) }
    }

    /// A Slurm array job: task i runs 'metaq sweep ... --index i' (so it writes the same
    /// folder and marker as a local sweep).
    func writeSlurm(to path: String, script: String, root: String, count: Int) throws {
        func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        var arguments = [selfExecutable(), "sweep", script]
        for g in grids { arguments += ["--grid", g] }
        for s in overrides { arguments += ["--set", s] }
        if let seed { arguments += ["--seed", String(seed)] }
        arguments += ["--out", root, "--jobs", "1", "--index", "\"$SLURM_ARRAY_TASK_ID\""]
        let name = (root as NSString).lastPathComponent
        let text = """
            #!/bin/bash
            # A Slurm array job written by 'metaq sweep --slurm': one task per configuration of the
            # grid. Submit with 'sbatch \((path as NSString).lastPathComponent)'; when all tasks have finished,
            # run the same 'metaq sweep' command without --slurm: it skips the finished
            # configurations and writes \(root)/results.csv and files.csv.
            #SBATCH --job-name=\(name)
            #SBATCH --array=0-\(count - 1)
            #SBATCH --ntasks=1
            #SBATCH --cpus-per-task=1
            #SBATCH --output=\(root)/slurm-%A_%a.log
            export METAQ_THREADS=${SLURM_CPUS_PER_TASK:-1}
            cd \(quote(FileManager.default.currentDirectoryPath))
            exec \(arguments.map { $0.hasPrefix("\"$") ? $0 : quote($0) }.joined(separator: " "))

            """
        do { try TextFile.write(text, to: path) } catch { throw ValidationError("cannot write \(path): \(error)") }
        chmod(path, 0o755)
    }
}

/// The path of the running metaq binary (children run the same one).
func selfExecutable() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

/// Runs a sweep's configurations as child processes and writes its tables.
struct SweepRunner {
    let script: String
    let root: String
    let keys: [String]
    let fixed: [String]
    let seed: UInt64?
    let jobs: Int

    enum Status: String { case done = "done", doneBefore = "done before", failed, interrupted, notRun = "not run" }

    struct Outcome {
        var status: Status
        var exitCode: Int32?
        var seconds: Double?
    }

    func folder(_ c: SweepConfiguration) -> String { root + "/" + c.id }

    /// The configuration's marker, if its run finished with these overrides.
    func finished(_ c: SweepConfiguration) -> Double? {
        guard let text = try? String(contentsOfFile: folder(c) + "/done", encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let overrides = lines.filter { !$0.hasPrefix("#") }.joined(separator: "\n")
        guard overrides == c.markerText else { return nil }
        return lines.first { $0.hasPrefix("#seconds ") }.flatMap { Double($0.dropFirst(9)) } ?? 0
    }

    /// Runs `selected` (skipping finished ones), then writes the tables for `all`. Returns
    /// the exit status: 0, 70 when a run failed, 130 when interrupted.
    func run(_ selected: [SweepConfiguration], all: [SweepConfiguration]) -> Int32 {
        sweepInterrupted = 0
        signal(SIGINT) { _ in sweepInterrupted = 1 }
        signal(SIGTERM) { _ in sweepInterrupted = 1 }
        defer { signal(SIGINT, SIG_DFL); signal(SIGTERM, SIG_DFL) }
        var outcomes: [Int: Outcome] = [:]
        var pending: [SweepConfiguration] = []
        for c in selected {
            if let seconds = finished(c) {
                outcomes[c.index] = Outcome(status: .doneBefore, exitCode: 0, seconds: seconds)
            } else {
                pending.append(c)
            }
        }
        let skipped = selected.count - pending.count
        print("sweep: \(selected.count) configuration\(selected.count == 1 ? "" : "s") of \(script) in \(root); \(skipped) already done, \(pending.count) to run, \(min(jobs, max(pending.count, 1))) at a time")
        fflush(nil)
        var environment = ProcessInfo.processInfo.environment
        if environment["METAQ_THREADS"] == nil {
            // Runs at the same time share the cores instead of each taking all of them.
            environment["METAQ_THREADS"] = String(max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, min(jobs, pending.count))))
        }
        var running: [(SweepConfiguration, Process, Date)] = []
        var queue = pending[...]
        var finishedCount = 0
        let binary = selfExecutable()
        while (!queue.isEmpty || !running.isEmpty) {
            if sweepInterrupted != 0 { break }
            while running.count < jobs, let c = queue.first {
                queue = queue.dropFirst()
                do {
                    running.append((c, try start(c, binary: binary, environment: environment), Date()))
                } catch {
                    outcomes[c.index] = Outcome(status: .failed, exitCode: nil, seconds: nil)
                    FileHandle.standardError.write(Data("sweep: cannot start \(c.id): \(error)\n".utf8))
                }
            }
            var still: [(SweepConfiguration, Process, Date)] = []
            for (c, p, started) in running {
                if p.isRunning { still.append((c, p, started)); continue }
                let seconds = Date().timeIntervalSince(started)
                finishedCount += 1
                let code = p.terminationStatus
                if code == 0 {
                    let marker = c.markerText + "#seconds \(seconds)\n"
                    try? TextFile.write(marker, to: folder(c) + "/done")
                    outcomes[c.index] = Outcome(status: .done, exitCode: 0, seconds: seconds)
                } else if code == ExitStatus.interrupted || sweepInterrupted != 0 {
                    // Ctrl-C on a terminal reaches the runs too; they may end before the sweep
                    // notices its own signal.
                    outcomes[c.index] = Outcome(status: .interrupted, exitCode: code, seconds: seconds)
                } else {
                    outcomes[c.index] = Outcome(status: .failed, exitCode: code, seconds: seconds)
                }
                let what = code == 0 ? "done" : outcomes[c.index]?.status == .interrupted ? "interrupted"
                    : "failed (exit \(code); see \(folder(c))/stderr.log)"
                print("[\(finishedCount)/\(pending.count)] \(c.id): \(what) in \(String(format: "%.1f", seconds)) s")
                fflush(nil)
            }
            running = still
            if !running.isEmpty || !queue.isEmpty { usleep(20_000) }
        }
        var status: Int32 = 0
        if sweepInterrupted != 0 {
            for (_, p, _) in running where p.isRunning { kill(p.processIdentifier, SIGINT) }
            // Each run ends on SIGINT at once; one that does not within 10 s is killed.
            let deadline = Date().addingTimeInterval(10)
            while running.contains(where: { $0.1.isRunning }) && Date() < deadline { usleep(20_000) }
            for (_, p, _) in running where p.isRunning { kill(p.processIdentifier, SIGKILL) }
            for (_, p, _) in running { p.waitUntilExit() }
            for (c, p, started) in running {
                let seconds = Date().timeIntervalSince(started)
                if p.terminationStatus == 0 && p.terminationReason == .exit {
                    // It finished just before the signal reached it.
                    try? TextFile.write(c.markerText + "#seconds \(seconds)\n", to: folder(c) + "/done")
                    outcomes[c.index] = Outcome(status: .done, exitCode: 0, seconds: seconds)
                } else {
                    outcomes[c.index] = Outcome(status: .interrupted, exitCode: nil, seconds: seconds)
                }
            }
            for c in queue { outcomes[c.index] = Outcome(status: .notRun) }
            print("sweep: interrupted: stopped \(running.count) run\(running.count == 1 ? "" : "s"); \(queue.count) not started; running the sweep again continues with the unfinished ones")
            status = ExitStatus.interrupted
        }
        let failed = outcomes.values.filter { $0.status == .failed }.count
        if status == 0 && failed > 0 { status = ExitStatus.runtimeError }
        let ran = outcomes.values.filter { $0.status == .done }.count
        do {
            let (results, files) = try writeTables(all, outcomes: outcomes)
            print("sweep: \(ran) run, \(skipped) already done, \(failed) failed; \(results)\(files.map { " and \($0)" } ?? "")")
        } catch {
            FileHandle.standardError.write(Data("sweep: cannot write the tables: \(error)\n".utf8))
            if status == 0 { status = ExitStatus.runtimeError }
        }
        return status
    }

    private func start(_ c: SweepConfiguration, binary: String, environment: [String: String]) throws -> Process {
        let dir = folder(c)
        try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
        // A run that did not finish before starts again from nothing but its own folder.
        try? FileManager.default.removeItem(atPath: dir + "/done")
        FileManager.default.createFile(atPath: dir + "/stdout.log", contents: nil)
        FileManager.default.createFile(atPath: dir + "/stderr.log", contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        var arguments = ["run", "--json", "--quiet"]
        if let seed { arguments += ["--seed", String(seed)] }
        for s in fixed { arguments += ["--set", s] }
        p.arguments = arguments + c.setArguments + [script]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.environment = environment
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/stdout.log"))
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/stderr.log"))
        try p.run()
        return p
    }

    /// results.csv (one row per configuration) and, when runs wrote CSV files, files.csv.
    func writeTables(_ all: [SweepConfiguration], outcomes: [Int: Outcome]) throws -> (String, String?) {
        var header = ["id"] + keys + ["status", "exit", "seconds", "error"]
        var rows: [[String: String]] = []
        var fileHeader = ["id"] + keys + ["file"]
        var fileRows: [[String: String]] = []
        for c in all {
            let dir = folder(c)
            var outcome = outcomes[c.index]
            if outcome == nil, let seconds = finished(c) { outcome = Outcome(status: .doneBefore, exitCode: 0, seconds: seconds) }
            var row = ["id": c.id]
            for o in c.overrides { row[o.key] = o.value }
            row["status"] = outcome?.status.rawValue ?? Status.notRun.rawValue
            row["exit"] = outcome?.exitCode.map(String.init) ?? ""
            row["seconds"] = outcome?.seconds.map { String(format: "%.3f", $0) } ?? ""
            if outcome?.status == .failed, let log = try? String(contentsOfFile: dir + "/stderr.log", encoding: .utf8) {
                row["error"] = log.split(separator: "\n").first { $0.contains("error") }.map(String.init)
                    ?? log.split(separator: "\n").last.map(String.init) ?? ""
            }
            let completed = outcome?.status == .done || outcome?.status == .doneBefore
            if completed, let log = try? String(contentsOfFile: dir + "/stdout.log", encoding: .utf8) {
                for (name, value) in SweepResults.columns(fromJSONLines: log[...]) {
                    // A result named like a fixed column keeps its own column.
                    let column = (["id", "status", "exit", "seconds", "error"] + keys).contains(name) ? "result." + name : name
                    if !header.contains(column) { header.append(column) }
                    row[column] = value
                }
            }
            rows.append(row)
            guard completed else { continue }
            for path in csvFiles(in: dir) {
                guard let text = try? String(contentsOfFile: dir + "/" + path, encoding: .utf8) else { continue }
                let table = SweepCSV.parse(text)
                guard let names = table.first else { continue }
                let columns = names.map { (["id", "file"] + keys).contains($0) ? "column." + $0 : $0 }
                for name in columns where !fileHeader.contains(name) { fileHeader.append(name) }
                for line in table.dropFirst() {
                    var r = ["id": c.id, "file": path]
                    for o in c.overrides { r[o.key] = o.value }
                    for (name, value) in zip(columns, line) { r[name] = value }
                    fileRows.append(r)
                }
            }
        }
        let results = root + "/results.csv"
        try TextFile.write(SweepCSV.table(header: header, rows: rows), to: results)
        guard !fileRows.isEmpty else {
            try? FileManager.default.removeItem(atPath: root + "/files.csv")
            return (results, nil)
        }
        let files = root + "/files.csv"
        try TextFile.write(SweepCSV.table(header: fileHeader, rows: fileRows), to: files)
        return (results, files)
    }

    /// The CSV files under `dir`, relative to it, sorted.
    private func csvFiles(in dir: String) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: dir) else { return [] }
        var found: [String] = []
        while let path = walker.nextObject() as? String {
            if path.lowercased().hasSuffix(".csv") { found.append(path) }
        }
        return found.sorted()
    }
}
