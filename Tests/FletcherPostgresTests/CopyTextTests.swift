@testable import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Testing

/// The text format `COPY … FROM STDIN` reads, written without the database: each value as
/// PostgreSQL's input functions take it.
@Suite("COPY text")
struct CopyTextTests {
    private func written(_ write: (inout CopyText) -> Void) -> String {
        var out = CopyText(capacity: 64)
        write(&out)
        out.endRow()
        return String(buffer: out.buffer)
    }

    @Test func columnsAreSeparatedByTabsAndRowsEndInNewlines() {
        let id = UUID()
        let row = written {
            $0.uuid(id)
            $0.integer(-42)
            $0.integer(1_234_567)
            $0.integer(Int.min)
            $0.bool(true)
            $0.bool(false)
            $0.text(nil)
            $0.uuid(nil)
            $0.text("plain")
        }
        #expect(row == "\(id.uuidString.lowercased())\t-42\t1234567\t-9223372036854775808\tt\tf\t\\N\t\\N\tplain\n")
    }

    @Test func separatorsBackslashesAndTheNullMarkerAreEscaped() {
        #expect(written { $0.text("a\tb\nc\rd\\e") } == "a\\tb\\nc\\rd\\\\e\n")
        // A text that reads `\N` is not NULL.
        #expect(written { $0.text("\\N") } == "\\\\N\n")
        #expect(written { $0.text("é 🚀 \"q\"") } == "é 🚀 \"q\"\n")
        #expect(written { $0.text("") } == "\n")
    }

    @Test(arguments: [
        Int64(0), 1, -1, 999_999, 951_782_400_000_000 /* 2000-02-29 */, 1_700_000_000_123_456, -86_400_000_001,
        -2_208_988_800_000_000 /* 1900-01-01 */, 4_102_444_799_999_999 /* 2099-12-31 23:59:59.999999 */,
        253_402_300_799_500_000 /* 9999-12-31 23:59:59.5 (what a Date holds exactly this far out) */,
    ])
    func timestampsAreExactToTheMicrosecond(micros: Int64) throws {
        let date = Date(microsecondsSince1970: micros)
        let text = written { $0.timestamp(date) }
        // The same instant as Foundation prints it, with the microseconds from the integer.
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let fraction = micros - seconds * 1_000_000
        let expected = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
            + "." + String(format: "%06lld", fraction) + "Z\n"
        #expect(text == expected)
    }

    @Test func yearsOutsideFourDigitsAreWrittenAsPostgreSQLReadsThem() {
        // 10000-01-01, 0001-12-31 BC (the year 0) and the first instant of the common era.
        #expect(written { $0.timestamp(Date(microsecondsSince1970: 253_402_300_800_000_000)) } == "10000-01-01 00:00:00.000000+00\n")
        #expect(written { $0.timestamp(Date(microsecondsSince1970: -62_135_596_800_500_000)) } == "0001-12-31 23:59:59.500000+00 BC\n")
        #expect(written { $0.timestamp(Date(microsecondsSince1970: -62_135_596_800_000_000)) } == "0001-01-01T00:00:00.000000Z\n")
    }

    /// PostgreSQL reads every time as written: copied in and read back, the same microsecond.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func theDatabaseReadsTheTimesBack() async throws {
        let store = try TestStores.postgresStore()
        let logger = Logger(label: "fletcher-test")
        let micros: [Int64] = [
            0, -1, 1_700_000_000_123_456, 951_782_400_000_000, 253_402_300_800_000_000, -62_135_596_800_500_000,
            -62_135_596_800_000_000, Date.storeNow().microsecondsSince1970,
        ]
        // In one transaction, as a transaction pooler carries a temporary table.
        let read = try await store.transaction(.write) { connection in
            try await connection.query("CREATE TEMP TABLE copied (n int, at timestamptz) ON COMMIT DROP", logger: logger)
            try await connection.copyFrom(table: "copied", columns: ["n", "at"], logger: logger) { writer in
                var out = CopyText(capacity: 1024)
                for (index, value) in micros.enumerated() {
                    out.integer(index)
                    out.timestamp(Date(microsecondsSince1970: value))
                    out.endRow()
                }
                try await writer.write(out.buffer)
            }
            var read: [Int64] = []
            for try await at in try await connection.query("SELECT at FROM copied ORDER BY n", logger: logger).decode(PostgresTimestamp.self) {
                read.append(at.microsecondsSince1970)
            }
            return read
        }
        #expect(read == micros)
    }
}
