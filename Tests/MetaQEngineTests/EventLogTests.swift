import Foundation
import Testing
@testable import MetaQEngine

/// TensorBoard event files: the TFRecord framing and the Event encoding (scripts/test-tensorboard.sh
/// reads a whole file back with TensorBoard's own reader).
@Suite("TensorBoard event files")
struct EventLogTests {
    @Test("CRC-32C and its TFRecord mask")
    func checksums() {
        // The standard check value of CRC-32C for "123456789" is 0xE3069283.
        let crc: UInt32 = 0xE306_9283
        #expect(EventLog.maskedCRC(Array("123456789".utf8)) == ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8)
    }

    @Test("records are framed with their length and checksums")
    func framing() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("events-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let log = try EventLog(folder: folder)
        try log.scalars(["loss": 0.5], step: 7)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: log.path)))
        var offset = 0
        var records: [[UInt8]] = []
        while offset < bytes.count {
            let length = Int(bytes[offset..<offset + 8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
            let lengthCRC = bytes[offset + 8..<offset + 12].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
            #expect(lengthCRC == EventLog.maskedCRC(Array(bytes[offset..<offset + 8])))
            let record = Array(bytes[offset + 12..<offset + 12 + length])
            let dataCRC = bytes[offset + 12 + length..<offset + 16 + length].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
            #expect(dataCRC == EventLog.maskedCRC(record))
            records.append(record)
            offset += 16 + length
        }
        #expect(records.count == 2)
        // The second event: wall time (field 1), step 7 (field 2, varint), a summary (field 5).
        let event = records[1]
        #expect(event[0] == 0x09 && event[9] == 0x10 && event[10] == 7 && event[11] == 0x2A)
        #expect(String(decoding: event, as: UTF8.self).contains("loss"))
    }
}
