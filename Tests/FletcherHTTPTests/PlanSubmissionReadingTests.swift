import FletcherAPI
import FletcherDomain
import FletcherJSON
@testable import FletcherHTTP
import FletcherStore
import FletcherTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OpenAPIRuntime
import PropertyBased
import Synchronization
import Testing

/// `PlanSubmissionReader` either reads a body exactly as the generated decoder and the wire mapping
/// do, or declines it (and the generated decoder answers).
@Suite("Plan submission reader")
struct PlanSubmissionReadingTests {
    /// What the generated path makes of a body: nil where it answers 400.
    static func generated(_ bytes: [UInt8]) -> PlanSubmission? {
        guard let wire = try? PlanRoutes.jsonDecoder().decode(Components.Schemas.PlanSubmission.self, from: Data(bytes)) else { return nil }
        return try? PlanSubmission(wire)
    }

    /// What the reader makes of a whole body: nil where it declines it.
    static func fast(_ bytes: [UInt8]) -> PlanSubmission? {
        var reader = PlanSubmissionReader(expectedBytes: bytes.count)
        return bytes.withUnsafeBytes { bytes in
            do {
                try reader.read(bytes)
                return try reader.finish()
            } catch {
                return nil
            }
        }
    }

    static let id = "6f1c2b9e-8a4d-4e3b-9c7a-1d2e3f4a5b6c"
    static let other = "0A1B2C3D-4E5F-4061-8293-A4B5C6D7E8F9"

    /// Plain submissions the fast path must take: every optional field present and absent, free-form
    /// JSON of every kind, unknown members at every level, escapes, non-ASCII text, odd whitespace.
    static let plain: [String] = [
        #"{"dataset":{"id":"\#(id)"},"data_products":[],"dependencies":[]}"#,
        """
        { "dependencies" : [ { "child_id" : "\(other)", "parent_id" : "\(id)", "extra" : null, "why": [1, {"x": null}] } ],
          "dataset" : { "extra" : { "team" : "ä \\" \\\\ \\/ \\n \\u00e9 \\ud83d\\ude00 ✓", "n" : [1, -0, 2.5, 1e2, 3.0, -1.5e-3, 9007199254740993, true, false, null] }, "id" : "\(id)", "unknown": {} },
          "data_products" : [
            { "id" : "\(id)", "compute" : "cams", "name" : "a \\"quoted\\" \\u0041 name", "version" : "", "eager" : true,
              "passthrough" : {"deep": {"deeper": [[[]]]}}, "extra" : "text" },
            { "eager" : false, "version" : "1.0", "name" : "日本", "compute" : "dbxaas", "id" : "\(other)", "passthrough": 12, "extra": null, "more": "ignored" }
          ],
          "comment": "ignored" }
        """,
        "\t\r\n" + #"{"dataset":{"id":"\#(id)","extra":1.25},"data_products":[{"id":"\#(id)","compute":"cams","name":"n","version":"v","eager":true,"passthrough":null}],"dependencies":[]}"# + " \n",
        // Limits, set and null; out of range ones too (their range is the rules' check: `PlanMutation.validateRequest`).
        #"{"dataset":{"id":"\#(id)"},"data_products":[{"id":"\#(id)","compute":"cams","name":"n","version":"v","eager":true,"retries":3,"max_queued_s":60,"max_running_s":0.25},"#
            + #"{"retries":null,"max_queued_s":null,"max_running_s":1e2,"id":"\#(other)","compute":"cams","name":"n","version":"v","eager":true},"#
            + #"{"id":"\#(id)","compute":"cams","name":"n","version":"v","eager":true,"retries":-1,"max_queued_s":0,"max_running_s":-2.5}],"dependencies":[]}"#,
        // Deadlines, set (in UTC, with an offset, with and without fractions) and null.
        #"{"dataset":{"id":"\#(id)","deadline":"2026-12-03T20:00:00Z"},"data_products":[{"id":"\#(id)","compute":"cams","name":"n","version":"v","eager":true,"deadline":"2026-12-03T21:30:00.123456+01:30"},"#
            + #"{"deadline":null,"id":"\#(other)","compute":"cams","name":"n","version":"v","eager":true},"#
            + #"{"id":"\#(id)","compute":"cams","name":"n","version":"v","eager":true,"deadline":"2026-12-03T20:00:00.5Z"}],"dependencies":[]}"#,
        #"{"dataset":{"deadline":null,"id":"\#(id)"},"data_products":[],"dependencies":[]}"#,
    ]

    /// Bodies the fast path must decline or read exactly as the generated path (most are refused by both).
    static let doubtful: [String] = [
        #"{"dataset":{"id":"\#(id)"},"dataset":{"id":"\#(other)"},"data_products":[],"dependencies":[]}"#,
        #"{"dataset":{"id":"\#(id)"},"data_products":[{"id":"\#(id)","compute":"cams","name":"a","name":"b","version":"v","eager":true}],"dependencies":[]}"#,
        #"{"dataset":{"id":"\u0036\#(id.dropFirst())"},"data_products":[],"dependencies":[]}"#,
        #"{"dataset":{"id":"\#(id)"},"data_products":[{"id":"\#(id)","compute":"cams","name":"a\u0000","version":"v","eager":true}],"dependencies":[]}"#,
        #"{"dataset":{"id":"\#(id)","extra":{"k\u0000":1}},"data_products":[],"dependencies":[]}"#,
        #"{"dataset":{"id":"\#(id)","extra":"#, String(repeating: "[", count: 33) + String(repeating: "]", count: 33) + "},\"data_products\":[],\"dependencies\":[]}",
        #"{"dataset":{"id":"\#(id)","extra":"# + String(repeating: "[", count: 32) + String(repeating: "]", count: 32) + "},\"data_products\":[],\"dependencies\":[]}",
        #"{"dataset":{"id":"\#(id)"},"data_products":[{"id":"\#(id)","compute":"CAMS","name":"a","version":"v","eager":true}],"dependencies":[]}"#,
        #"{"dataset":{"id":"\#(id)"},"data_products":[{"id":"\#(id)","compute":"cams","name":"a","version":"v","eager":"true"}],"dependencies":[]}"#,
        #"{"dataset":{"id":"\#(id)"},"data_products":[{"id":"\#(id)","compute":"cams","name":"a","eager":true}],"dependencies":[]}"#,
        #"{"dataset":{"id":"\#(id)"},"data_products":[{"id":"\#(id)","compute":"cams","name":1,"version":"v","eager":true}],"dependencies":[]}"#,
        #"{"dataset":{"id":"\#(id)"},"data_products":[],"dependencies":[{"parent_id":"\#(id)"}]}"#,
        #"{"dataset":{"id":"\#(id)"},"data_products":[],"dependencies":[],}"#,
        #"{"dataset":{"id":"\#(id)"},"data_products":[],"dependencies":[]} x"#,
        #"{"dataset":{"id":"\#(id)"},"data_products":null,"dependencies":[]}"#,
        #"{"dataset":{"id":"{\#(id)}"},"data_products":[],"dependencies":[]}"#,
        #"{"dataset":{"id":"\#(id.dropLast())"},"data_products":[],"dependencies":[]}"#,
        #"{"dataset":{"id":"\#(id.replacingOccurrences(of: "-", with: "0"))"},"data_products":[],"dependencies":[]}"#,
        #"{"dataset":{"id":"\#(id.dropLast())g"},"data_products":[],"dependencies":[]}"#,
        #"{"dataset":{"id":"\#(id)","extra":"\ud800"},"data_products":[],"dependencies":[]}"#,
        #"{"dataset":{"id":"\#(id)","extra":1e400},"data_products":[],"dependencies":[]}"#,
        #"{"dataset":{"id":"\#(id)","extra":{"a":1,"a":2}},"data_products":[],"dependencies":[]}"#,
        #"{"dataset":{"id":"\#(id)"},"data_products":[],"dependencies":[]"#,
        #"[]"#, #""#, #"null"#,
        limits(#""retries":2.5"#), limits(#""retries":"3""#), limits(#""retries":true"#), limits(#""retries":1e30"#),
        limits(#""retries":9223372036854775808"#), limits(#""max_queued_s":"60""#), limits(#""max_running_s":[1]"#),
        limits(#""retries":3.0"#), limits(#""retries":1e2"#), limits(#""retries":1,"retries":2.5"#),
        limits(#""deadline":"tomorrow""#), limits(#""deadline":1764792000"#), limits(#""deadline":"2026-13-03T20:00:00Z""#),
        limits(#""deadline":"2026-12-03""#), limits(#""deadline":{}"#),
        #"{"dataset":{"id":"\#(id)","deadline":"soon"},"data_products":[],"dependencies":[]}"#,
    ]

    /// A submission of one product with `members` beside its own.
    static func limits(_ members: String) -> String {
        #"{"dataset":{"id":"\#(id)"},"data_products":[{"id":"\#(id)","compute":"cams","name":"n","version":"v","eager":true,\#(members)}],"dependencies":[]}"#
    }

    @Test func plainSubmissionsAreReadAsTheGeneratedDecoderReadsThem() throws {
        for text in Self.plain {
            let fast = try #require(Self.fast(Array(text.utf8)), "declined: \(text)")
            #expect(fast == Self.generated(Array(text.utf8)), "\(text)")
        }
    }

    /// Repeated names (the first counts), escaped UUIDs, a trailing comma after the arrays, a whole
    /// `retries` written with a fraction or an exponent: read as the generated path reads them;
    /// everything the fast path declines, the generated path refuses too.
    @Test func doubtfulBodiesAreReadOrRefusedAsTheGeneratedPathDoes() {
        var refused = 0
        for text in Self.doubtful {
            let bytes = Array(text.utf8)
            let fast = Self.fast(bytes)
            #expect(fast == Self.generated(bytes), "\(text)")
            if fast == nil { refused += 1 }
        }
        #expect(refused == Self.doubtful.count - 9)
    }

    /// Read as it arrives, in chunks of any size (down to single bytes, splitting names, escapes,
    /// UUIDs and numbers), a body reads as it does whole.
    @Test func bodiesReadInAnyChunksReadAsWhole() async {
        let fixed = Self.plain + Self.doubtful
        let bodies = zip(Self.submissions, Gen.int(in: 0...(2 * fixed.count))).map { generated, index in
            index < fixed.count ? fixed[index] : generated
        }
        await propertyCheck(count: 400, input: zip(bodies, Gen.int(in: 1...40), Gen.int(in: 0...1_000_000))) {
            text, size, seed in
            let bytes = Array(text.utf8)
            var reader = PlanSubmissionReader()
            var generator = Chunks(state: UInt64(seed))
            var start = 0
            var read: PlanSubmission?
            do {
                while start < bytes.count {
                    let end = min(bytes.count, start + Int.random(in: 1...size, using: &generator))
                    try bytes[start..<end].withUnsafeBytes { try reader.read($0) }
                    start = end
                }
                read = try reader.finish()
            } catch {}
            #expect(read == Self.fast(bytes), "\(text) in chunks of up to \(size)")
        }
    }

    @Test func bytesThatAreNotUTF8AreDeclined() {
        for bad: [UInt8] in [[0xFF], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80]] {
            let bytes = Array(#"{"dataset":{"id":"\#(Self.id)","extra":""#.utf8) + bad + Array(#""},"data_products":[],"dependencies":[]}"#.utf8)
            #expect(Self.fast(bytes) == nil)
            #expect(Self.generated(bytes) == nil)
        }
    }

    /// Text of any characters but NUL (quotes, backslashes, controls, non-BMP).
    static let text = Gen.character(in: "\u{1}"..."\u{D7FF}").string(of: 0...10).map { $0 + "\u{1F600}\"\\" }

    static let submissions = zip(Gen.int(in: 0...6), Gen.int(in: Int.min...Int.max), Gen.double(in: -1e9...1e9), text, Gen.bool)
        .map { count, integer, number, text, flag -> String in
            let ids = (0..<count).map { _ in UUID() }
            let free: [JSONValue?] = [nil, .integer(integer), .number(number), .string(text), .array([.bool(flag), .null]),
                                      .object([text: .object(["n": .number(number)])])]
            func json(_ value: JSONValue?) -> String { value?.text ?? "null" }
            let products = ids.enumerated().map { offset, id in
                // Limits in range, out of it, null or absent.
                let limits = [
                    "", #","retries":\#(integer % 150),"max_queued_s":\#(JSONValue.number(number).text)"#,
                    #","retries":null,"max_running_s":\#(JSONValue.number(abs(number) / 1e3).text)"#, #","max_queued_s":\#(offset)"#,
                ][offset % 4]
                return #"{"id":"\#(flag ? id.uuidString : id.uuidString.lowercased())","compute":"\#(offset % 2 == 0 ? "cams" : "dbxaas")","#
                    + #""name":\#(JSONValue.string(text + "\(offset)").text),"version":\#(JSONValue.string(text).text),"#
                    + #""eager":\#(offset % 3 == 0),"passthrough":\#(json(free[offset % free.count])),"#
                    + #""extra":\#(json(free[(offset + 1) % free.count]))\#(limits)}"#
            }
            let dependencies = zip(ids, ids.dropFirst()).enumerated().map { offset, pair in
                #"{"parent_id":"\#(pair.0)","child_id":"\#(pair.1)","extra":\#(json(free[offset % free.count]))}"#
            }
            return #"{"dataset":{"id":"\#(UUID())","extra":\#(json(free[count % free.count]))},"#
                + #""data_products":[\#(products.joined(separator: ","))],"dependencies":[\#(dependencies.joined(separator: ","))]}"#
        }

    @Test func generatedSubmissionsAreReadAsTheGeneratedDecoderReadsThem() async {
        await propertyCheck(count: 300, input: Self.submissions) { text in
            let fast = Self.fast(Array(text.utf8))
            #expect(fast != nil, "declined: \(text)")
            #expect(fast == Self.generated(Array(text.utf8)), "\(text)")
        }
    }
}

/// Chunk sizes for a body read in pieces (a linear congruential generator: the same seed, the same pieces).
struct Chunks: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state
    }
}

/// How the submission route reads a body (`PlanRoutes.readSubmission`): as it arrives, with what
/// the reader declines handed, up to `keptBytes`, to the generated type's decoder.
@Suite("Plan submission route's reading")
struct PlanSubmissionRouteReadingTests {
    /// The body in chunks of `chunk` bytes, as a connection delivers it.
    func pass(_ text: String, chunk: Int = 4_096) async throws -> PlanSubmission {
        let bytes = Array(text.utf8)
        let chunks = stride(from: 0, to: bytes.count, by: chunk).map { ByteBuffer(bytes: bytes[$0..<min($0 + chunk, bytes.count)]) }
        return try await PlanRoutes.readSubmission(
            RequestBody(asyncSequence: AsyncStream { for chunk in chunks { $0.yield(chunk) }; $0.finish() }), length: nil,
            makeRoom: { _ in })
    }

    @Test func plainBodiesAreReadAndDeclinedOnesGoToTheGeneratedDecoder() async throws {
        let plain = PlanSubmissionReadingTests.plain[0]
        #expect(try await pass(plain, chunk: 7) == PlanSubmissionReadingTests.generated(Array(plain.utf8)))
        // A trailing comma inside a row: the reader declines it, the generated decoder takes it.
        let trailing = #"{"dataset":{"id":"\#(PlanSubmissionReadingTests.id)","extra":{"a":1,},},"data_products":[],"dependencies":[]}"#
        #expect(PlanSubmissionReadingTests.fast(Array(trailing.utf8)) == nil)
        let generated = try #require(PlanSubmissionReadingTests.generated(Array(trailing.utf8)))
        #expect(try await pass(trailing) == generated)
        // Refused by both: the generated decoder's words name the field.
        let doubtful = #"{"dataset":{"id":"\#(PlanSubmissionReadingTests.id)"},"data_products":null,"dependencies":[]}"#
        let error = await #expect(throws: DecodingError.self) { _ = try await pass(doubtful) }
        #expect(error.flatMap { Problem(for: $0) }?.detail.contains("data_products") == true)
    }

    /// A limit out of range is read alike by every reader — the fast one, the generated decoder (a
    /// trailing comma in a row), or the fast one for a body too big to hand on — and refused by the
    /// rules' request checks naming the field; a limit of the wrong type is refused by the reader,
    /// naming the row and the member.
    @Test func limitsOutOfRangeAreRefusedNamingTheField() async throws {
        let id = PlanSubmissionReadingTests.id
        let range = "data_products[0].retries must be an integer from 0 to 100"
        /// The 400's detail for the submission the route read from `body`.
        func refusal(_ body: String) async throws -> String? {
            let submission = try await pass(body)
            do {
                try PlanMutation.submit(submission).validateRequest()
                return nil
            } catch {
                return Problem(for: error)?.detail
            }
        }
        let fast = #"{"dataset":{"id":"\#(id)"},"data_products":[{"id":"\#(id)","compute":"cams","name":"n","version":"v","eager":true,"retries":101}],"dependencies":[]}"#
        let slow = #"{"dataset":{"id":"\#(id)"},"data_products":[{"id":"\#(id)","compute":"cams","name":"n","version":"v","eager":true,"retries":101,}],"dependencies":[]}"#
        #expect(PlanSubmissionReadingTests.fast(Array(slow.utf8)) == nil)
        for body in [fast, slow] {
            #expect(try await refusal(body)?.hasPrefix("Invalid request: \(range) (data product ") == true)
        }
        let seconds = fast.replacingOccurrences(of: #""retries":101"#, with: #""retries":0,"max_running_s":31536000.5"#)
        #expect(try await refusal(seconds)?.hasPrefix("Invalid request: data_products[0].max_running_s must be a number of seconds") == true)

        let ids = (0..<12_000).map { _ in UUID().uuidString.lowercased() }
        var products = ids.map { #"{"id":"\#($0)","compute":"cams","name":"n","version":"1","eager":true,"retries":1}"# }
        func body() -> String {
            #"{"dataset":{"id":"\#(id)"},"data_products":[\#(products.joined(separator: ","))],"dependencies":[]}"#
        }
        products[8_000] = products[8_000].replacingOccurrences(of: #""retries":1"#, with: #""retries":101"#)
        #expect(try await refusal(body())?.hasPrefix("Invalid request: \(range.replacingOccurrences(of: "[0]", with: "[8000]"))") == true)
        products[8_000] = products[8_000].replacingOccurrences(of: #""retries":101"#, with: #""retries":2.5"#)
        await #expect { _ = try await pass(body()) } throws: {
            ($0 as? Problem)?.detail.contains("data_products[8000]: 'retries' must be an integer") == true
        }
    }

    /// Rows read through the middleware are handed on in arrays of about their size (read into
    /// arrays made for the rest of the body, they are trimmed when small): 1,100 rows read one by
    /// one would take 2,048 places.
    @Test func readRowsAreKeptInArraysOfTheirSize() async throws {
        let ids = (0..<1_100).map { _ in UUID().uuidString.lowercased() }
        let products = ids.map { #"{"id":"\#($0)","compute":"cams","name":"n","version":"1","eager":true}"# }
        let edges = zip(ids, ids.dropFirst()).map { #"{"parent_id":"\#($0.0)","child_id":"\#($0.1)"}"# }
        let body = #"{"dataset":{"id":"\#(PlanSubmissionReadingTests.id)"},"data_products":[\#(products.joined(separator: ","))],"dependencies":[\#(edges.joined(separator: ","))]}"#
        let whole = try #require(PlanSubmissionReadingTests.fast(Array(body.utf8)))
        let read = try await pass(body)
        #expect(read == whole)
        #expect(read.dataProducts.count == 1_100 && read.dependencies.count == 1_099)
        #expect(read.dataProducts.capacity - read.dataProducts.count < read.dataProducts.count / 8)
        #expect(read.dependencies.capacity - read.dependencies.count < read.dependencies.count / 8)
    }

    /// A body too big to hold (over `keptBytes`) is read as it arrives and never held; declined,
    /// it is answered here with a 400 saying where and why.
    @Test func bigBodiesAreReadAsTheyArriveAndRefusedWithTheReason() async throws {
        let ids = (0..<12_000).map { _ in UUID().uuidString.lowercased() }
        let products = ids.map { #"{"id":"\#($0)","compute":"cams","name":"n","version":"1","eager":true}"# }
        func body(_ products: [String]) -> String {
            #"{"dataset":{"id":"\#(PlanSubmissionReadingTests.id)"},"data_products":[\#(products.joined(separator: ","))],"dependencies":[]}"#
        }
        let big = body(products)
        #expect(big.utf8.count > PlanRoutes.keptBytes)
        let read = try await pass(big)
        #expect(read.dataProducts.count == 12_000)
        var broken = products
        broken[8_000] = broken[8_000].replacingOccurrences(of: "cams", with: "nope")
        await #expect {
            _ = try await pass(body(broken))
        } throws: { error in
            guard let problem = error as? Problem else { return false }
            return problem.status == .badRequest && problem.detail.contains("data_products[8000]")
                && problem.detail.contains("'compute' must be one of cams, dbxaas")
        }
        // Declined early, in its first megabyte: refused as soon as the body is known to be big.
        broken = products
        broken[3] = "{}"
        await #expect {
            _ = try await pass(body(broken))
        } throws: { error in
            (error as? Problem)?.detail.contains("data_products[3]: missing 'id', 'compute', 'name', 'version', 'eager'") == true
        }
    }
}
