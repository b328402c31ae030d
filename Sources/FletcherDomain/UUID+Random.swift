public import Foundation

extension UUID {
    /// A random (version 4) UUID from the system generator (Foundation's `UUID()` opens
    /// `/dev/urandom` for each one); the server makes one per request and per queueing.
    public static func random() -> UUID {
        var generator = SystemRandomNumberGenerator()
        let high = (generator.next() as UInt64) & ~0xF000 | 0x4000
        let low = (generator.next() as UInt64) & ~(0xC000 << 48) | 0x8000 << 48
        return UUID(uuid: withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { $0.loadUnaligned(as: uuid_t.self) })
    }
}
