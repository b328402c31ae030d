public import Foundation

extension UUID {
    /// The wire spelling of a UUID: lowercase, hyphenated. (Written digit by digit: Foundation's
    /// `uuidString` formats with `snprintf`, a visible share of the server's time.)
    public var lowercased: String {
        String(unsafeUninitializedCapacity: 36) { out in
            JSONBytes.write(self, to: UnsafeMutableBufferPointer(rebasing: out[0..<36]))
            return 36
        }
    }
}
