import Foundation

/// Open MPI, loaded when the process was started by `mpirun` (no build-time dependency: the
/// library is opened with dlopen and its functions called through pointers; Open MPI's
/// handles MPI_COMM_WORLD, MPI_FLOAT, MPI_DOUBLE and MPI_SUM are the addresses of its global
/// objects `ompi_mpi_comm_world`, `ompi_mpi_float`, `ompi_mpi_double`, `ompi_mpi_op_sum`).
/// Without `mpirun`, or without Open MPI installed, metaq runs as one process.
///
/// ```swift
/// if let mpi = try MPI.startIfLaunched() { DataParallel.group = mpi }
/// ```
public final class MPI: ReductionGroup, @unchecked Sendable {
    public let rank: Int
    public let size: Int

    private typealias InitFunction = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Int32
    private typealias CommIntFunction = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<Int32>) -> Int32
    private typealias AllreduceFunction = @convention(c) (
        UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?
    ) -> Int32
    private typealias AbortFunction = @convention(c) (UnsafeMutableRawPointer?, Int32) -> Int32
    private typealias FinalizeFunction = @convention(c) () -> Int32

    private let allreduce: AllreduceFunction
    private let abortFunction: AbortFunction
    private let finalizeFunction: FinalizeFunction
    private let world: UnsafeMutableRawPointer
    private let float: UnsafeMutableRawPointer
    private let double: UnsafeMutableRawPointer
    private let sumOp: UnsafeMutableRawPointer
    /// Open MPI's MPI_IN_PLACE.
    private let inPlace = UnsafeRawPointer(bitPattern: 1)

    /// The process's group when it was started by mpirun (Open MPI's or a PMI launcher's
    /// environment says so), nil otherwise. Throws when it was, but Open MPI cannot be used.
    public static func startIfLaunched(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> MPI? {
        guard environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["PMI_SIZE"] != nil || environment["PMIX_RANK"] != nil else {
            return nil
        }
        return try MPI()
    }

    private init() throws {
        var handle: UnsafeMutableRawPointer?
        var errors: [String] = []
        // RTLD_GLOBAL: Open MPI's own plug-ins, opened later, resolve their symbols in libmpi.
        for name in ["libmpi.so.40", "libmpi.so"] {
            handle = dlopen(name, RTLD_NOW | RTLD_GLOBAL)
            if handle != nil { break }
            errors.append(String(cString: dlerror()))
        }
        guard let handle else {
            throw MPIError("started by mpirun, but Open MPI's library cannot be loaded (\(errors.joined(separator: "; "))); install Open MPI (Debian: openmpi-bin libopenmpi-dev)")
        }
        func symbol(_ name: String) throws -> UnsafeMutableRawPointer {
            guard let s = dlsym(handle, name) else {
                throw MPIError("the MPI library lacks '\(name)': metaq runs across processes with Open MPI only")
            }
            return s
        }
        let initialize = unsafeBitCast(try symbol("MPI_Init"), to: InitFunction.self)
        let commRank = unsafeBitCast(try symbol("MPI_Comm_rank"), to: CommIntFunction.self)
        let commSize = unsafeBitCast(try symbol("MPI_Comm_size"), to: CommIntFunction.self)
        allreduce = unsafeBitCast(try symbol("MPI_Allreduce"), to: AllreduceFunction.self)
        abortFunction = unsafeBitCast(try symbol("MPI_Abort"), to: AbortFunction.self)
        finalizeFunction = unsafeBitCast(try symbol("MPI_Finalize"), to: FinalizeFunction.self)
        world = try symbol("ompi_mpi_comm_world")
        float = try symbol("ompi_mpi_float")
        double = try symbol("ompi_mpi_double")
        sumOp = try symbol("ompi_mpi_op_sum")
        guard initialize(nil, nil) == 0 else { throw MPIError("MPI_Init failed") }
        var r: Int32 = 0, s: Int32 = 0
        guard commRank(world, &r) == 0, commSize(world, &s) == 0, s >= 1, r >= 0, r < s else {
            throw MPIError("cannot read this process's rank in MPI_COMM_WORLD")
        }
        rank = Int(r)
        size = Int(s)
    }

    public func sum(_ values: inout [Float]) {
        guard size > 1 else { return }
        let count = values.count
        values.withUnsafeMutableBytes { raw in
            var offset = 0
            // MPI counts are Int32: large buffers go in pieces.
            while offset < count {
                let n = min(count - offset, Int(Int32.max))
                let rc = allreduce(inPlace, raw.baseAddress! + offset * 4, Int32(n), float, sumOp, world)
                if rc != 0 { abort(message: "MPI_Allreduce failed (error \(rc))", status: 70) }
                offset += n
            }
        }
    }

    public func sum(_ values: inout [Double]) {
        guard size > 1 else { return }
        let count = values.count
        values.withUnsafeMutableBytes { raw in
            let rc = allreduce(inPlace, raw.baseAddress!, Int32(count), double, sumOp, world)
            if rc != 0 { abort(message: "MPI_Allreduce failed (error \(rc))", status: 70) }
        }
    }

    /// Prints `message` (naming this rank) to standard error and ends every rank.
    public func abort(message: String, status: Int32) -> Never {
        FileHandle.standardError.write(Data("metaq: rank \(rank) of \(size): \(message)\n".utf8))
        _ = abortFunction(world, status)
        exit(status)
    }

    /// Ends this process's part in MPI; call once, before exiting normally.
    public func finalize() { _ = finalizeFunction() }
}

public struct MPIError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
