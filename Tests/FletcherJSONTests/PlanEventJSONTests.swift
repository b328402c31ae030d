import FletcherDomain
import FletcherJSON
import Foundation
import PropertyBased
import Testing

@Suite("Event JSON")
struct PlanEventJSONTests {
    static let eventId = UUID(uuidString: "0F8FAD5B-D9CB-469F-A165-70867728950E")!
    static let datasetId = UUID(uuidString: "7C9E6679-7425-40DE-944B-E07FC1F90AE7")!
    static let productId = UUID(uuidString: "9A8B7C6D-1111-4222-8333-944455556666")!
    /// 2026-11-23T03:20:13.123456Z, to the microsecond.
    static let time = Date(timeIntervalSince1970: Double(1_795_404_013_123_456) / 1_000_000)

    static let failed = PlanEvent(
        id: eventId, type: .dataProductFailed, time: time, datasetId: datasetId, sequence: 7, dataProductId: productId,
        data: [
            "final": .bool(false), "try": .integer(2), "reason": .string("api"), "name": .string("say \"hi\"\n"),
            "retry_at": .time(time.addingTimeInterval(30)), "late_by_s": .number(0), "ratio": .number(0.25), "note": .null,
        ])

    /// The stores keep `data` as this text: canonical (a `JSONValue` reads it back to the same
    /// text), and read back to the same values — times as times, `late_by_s` as a `Double` even
    /// when whole.
    @Test func dataIsCanonicalTextAndReadsBackEqual() throws {
        let text = Self.failed.dataJSON.text
        #expect(try JSONValue(parsing: text).text == text)
        #expect(try PlanEvent.data(parsing: text) == Self.failed.data)
        #expect(try PlanEvent.data(parsing: "{}") == [:])
        #expect(PlanEvent(id: Self.eventId, type: .datasetPaused, time: Self.time, datasetId: nil, sequence: nil).dataJSON.text == "{}")
    }

    /// Only the keys known to hold times read back as times; elsewhere a time's text stays text,
    /// and text under a time key that is no time stays text too.
    @Test func onlyTimeKeysReadBackAsTimes() throws {
        let data = try PlanEvent.data(
            parsing: #"{"deadline":"2026-11-23T03:20:13.123456Z","label":"2026-11-23T03:20:13.123456Z","retry_at":"soon","n":3}"#)
        #expect(
            data == [
                "deadline": .time(Self.time), "label": .string("2026-11-23T03:20:13.123456Z"), "retry_at": .string("soon"),
                "n": .integer(3),
            ])
    }

    /// Data of every kind — any text as keys and values (controls, quotes), any integer, fractions,
    /// times to the microsecond under the time keys, whole and fractional `late_by_s` — reads back
    /// from its stored text equal, and the text is canonical. (Times up to 2096: a `Date`, seconds
    /// in a `Double`, holds every microsecond only before 2^32 seconds, in 2106.)
    @Test func anyDataReadsBackEqual() async {
        let data = zip(
            Gen.character(in: "\u{0}"..."\u{D7FF}").string(of: 0...12), Gen.int(in: Int.min...Int.max),
            Gen.double(in: -1e12...1e12), Gen.int(in: 0...4_000_000_000_000_000)
        ).map { text, integer, number, micros -> [String: EventValue] in
            [
                "s_" + text: .string(text), "i_" + text: .integer(integer), "f": .number(number.rounded(.down) + 0.25),
                "b": .bool(integer % 2 == 0), "z": .null, "deadline": .time(Date(timeIntervalSince1970: Double(micros) / 1_000_000)),
                "retry_at": .time(Date(timeIntervalSince1970: Double(micros / 3) / 1_000_000)),
                "late_by_s": .number(integer % 2 == 0 ? number.rounded() : number),
            ]
        }
        await propertyCheck(count: 300, input: data) { data in
            let event = PlanEvent(type: .dataProductSucceeded, time: Self.time, datasetId: Self.datasetId, sequence: 1, data: data)
            let text = event.dataJSON.text
            #expect((try? PlanEvent.data(parsing: text)) == data, "\(text)")
            #expect((try? JSONValue(parsing: text))?.text == text)
        }
    }

    @Test(arguments: [(1_000.000_000_4, 1_000.0), (1_000.000_000_6, 1_000.000_001)])
    func timesAreKeptToTheNearestMicrosecond(seconds: Double, kept: Double) throws {
        let time = Date(timeIntervalSince1970: seconds)
        let event = PlanEvent(type: .datasetLate, time: time, datasetId: Self.datasetId, sequence: 1, data: ["deadline": .time(time)])
        #expect(try PlanEvent.data(parsing: event.dataJSON.text)["deadline"] == .time(Date(timeIntervalSince1970: kept)))
    }

    @Test(arguments: [
        ("1970-01-01T00:00:00.000000Z", 0.0), ("2000-02-29T23:59:59.999999Z", 951_868_799.999_999),
        ("1969-12-31T23:59:59.500000Z", -0.5), ("0000-01-01T00:00:00.000000Z", -62_167_219_200.0),
        ("9999-12-31T23:59:59.000000Z", 253_402_300_799.0),
    ])
    func datesReadAsWrittenAcrossTheRange(text: String, seconds: Double) throws {
        let date = try #require(JSONBytes.readDate(text))
        #expect(abs(date.timeIntervalSince1970 - seconds) < 1e-6)
        var written: [UInt8] = []
        JSONBytes.writeDate(date, to: &written)
        #expect(String(decoding: written, as: UTF8.self) == text)
    }

    @Test(arguments: [
        "", "2026-11-23T03:20:13Z", "2026-11-23T03:20:13.123Z", "2026-11-23 03:20:13.123456Z", "2026-13-01T00:00:00.000000Z",
        "2026-02-30T00:00:00.000000Z", "2026-11-23T24:00:00.000000Z", "2026-11-23T03:60:00.000000Z", "2026-11-23T03:20:13.123456+",
        "2026-1a-23T03:20:13.123456Z", "2026-11-23T03:20:13.123456z",
    ])
    func otherTextIsNoDate(text: String) {
        #expect(JSONBytes.readDate(text) == nil)
    }

    @Test(arguments: ["[]", #"{"a":[1]}"#, #"{"a":{}}"#, #"{"a":1"#, "null", #"{"a":1} x"#])
    func dataThatIsNotAnObjectOfPlainValuesIsRefused(text: String) {
        #expect(throws: JSONSyntaxError.self) { try PlanEvent.data(parsing: text) }
    }
}
