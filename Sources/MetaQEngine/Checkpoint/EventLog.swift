import Foundation

/// TensorBoard event files, written by metaq: the TFRecord framing (length, masked CRC-32C of
/// the length, the record, masked CRC-32C of the record) around `Event` protocol buffers
/// (wall time, step, and a summary of named scalar values). TensorBoard, and its event
/// readers, read them as they read TensorFlow's and PyTorch's.
///
/// ```swift
/// let log = try EventLog(folder: "runs/sine")
/// try log.scalars(["loss": 0.42, "learning_rate": 0.001], step: 1000)
/// ```
public final class EventLog {
    public let path: String
    private let handle: FileHandle

    /// Creates the folder if needed and a new event file in it.
    public init(folder: String) throws {
        guard DataParallel.isLeader else {
            // Across processes (mpirun) only the first writes files.
            path = "/dev/null"
            handle = FileHandle.nullDevice
            return
        }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "metaq"
        let now = Date().timeIntervalSince1970
        path = (folder as NSString).appendingPathComponent(
            "events.out.tfevents.\(Int(now)).\(host).\(ProcessInfo.processInfo.processIdentifier).metaq")
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        self.handle = handle
        var event = Protobuf()
        event.double(1, now)
        event.string(3, "brain.Event:2")
        try write(event.bytes)
    }

    deinit { try? handle.close() }

    /// One event holding the scalar values named in `values` (sorted by name) at `step`.
    public func scalars(_ values: [String: Double], step: Int) throws {
        var summary = Protobuf()
        for (tag, value) in values.sorted(by: { $0.key < $1.key }) {
            var v = Protobuf()
            v.string(1, tag)
            v.float(2, Float(value))
            summary.message(1, v)
        }
        var event = Protobuf()
        event.double(1, Date().timeIntervalSince1970)
        event.varint(2, UInt64(bitPattern: Int64(step)))
        event.message(5, summary)
        try write(event.bytes)
    }

    /// Appends one TFRecord and flushes it to the file.
    private func write(_ record: [UInt8]) throws {
        guard DataParallel.isLeader else { return }
        var length = [UInt8]()
        withUnsafeBytes(of: UInt64(record.count).littleEndian) { length += $0 }
        var framed = length
        withUnsafeBytes(of: EventLog.maskedCRC(length).littleEndian) { framed += $0 }
        framed += record
        withUnsafeBytes(of: EventLog.maskedCRC(record).littleEndian) { framed += $0 }
        try handle.write(contentsOf: Data(framed))
        try handle.synchronize()
    }

    /// CRC-32C (Castagnoli), masked as TFRecord masks it.
    static func maskedCRC(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = crc32cTable[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        crc ^= 0xFFFF_FFFF
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    private static let crc32cTable: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }
}

/// The few protocol-buffer wire encodings an event needs.
struct Protobuf {
    var bytes: [UInt8] = []

    private mutating func key(_ field: Int, _ wireType: UInt64) { appendVarint(UInt64(field) << 3 | wireType) }

    private mutating func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func varint(_ field: Int, _ value: UInt64) {
        key(field, 0)
        appendVarint(value)
    }

    mutating func double(_ field: Int, _ value: Double) {
        key(field, 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }

    mutating func string(_ field: Int, _ value: String) {
        key(field, 2)
        let utf8 = Array(value.utf8)
        appendVarint(UInt64(utf8.count))
        bytes += utf8
    }

    mutating func message(_ field: Int, _ value: Protobuf) {
        key(field, 2)
        appendVarint(UInt64(value.bytes.count))
        bytes += value.bytes
    }
}
