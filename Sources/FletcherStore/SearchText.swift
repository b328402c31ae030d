public import FletcherDomain
import FletcherJSON
public import Foundation

extension Dataset {
    /// What search matches against: the id and the extra's JSON text, lowercased.
    public var searchText: String {
        (id.lowercased + " " + (extra?.text ?? "null")).lowercased()
    }
}

extension Date {
    /// Microseconds since 1970: the precision both engines store.
    public var microsecondsSince1970: Int64 {
        Int64((timeIntervalSince1970 * 1_000_000).rounded())
    }

    public init(microsecondsSince1970 micros: Int64) {
        self.init(timeIntervalSince1970: Double(micros) / 1_000_000)
    }

    /// Now, to the microsecond, and never before `floor` (so a dataset's times never go backwards).
    public static func storeNow(notBefore floor: Date? = nil) -> Date {
        let now = Date(microsecondsSince1970: Date().microsecondsSince1970)
        guard let floor, floor > now else { return now }
        return floor
    }
}
