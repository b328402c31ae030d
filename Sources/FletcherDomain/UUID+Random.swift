public import Foundation

extension UUID {
    /// A random (version 4) UUID. Foundation's `UUID()` opens `/dev/urandom` for each one, a
    /// visible cost when every request makes one (its request id); the system generator does not.
    public static func random() -> UUID {
        var generator = SystemRandomNumberGenerator()
        let high = (generator.next() as UInt64) & ~0xF000 | 0x4000
        let low = (generator.next() as UInt64) & ~(0xC000 << 48) | 0x8000 << 48
        return UUID(uuid: withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { $0.loadUnaligned(as: uuid_t.self) })
    }
}
