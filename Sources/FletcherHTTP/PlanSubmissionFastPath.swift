import FletcherAPI
public import FletcherDomain
import FletcherStore
import Foundation
import HTTPTypes
import OpenAPIRuntime

extension PlanSubmission {
    /// Reads a submission (`openapi.yaml`'s `PlanSubmission`) straight from a request's bytes
    /// (`PlanSubmissionReader`, given them at once); nil when the body is not one — then the
    /// generated decoder reads it and says what is wrong.
    ///
    /// Foundation's `JSONDecoder` through the generated types took 65 % of the server's time for a
    /// 100,000-product submission (`perf`, 8 s of 13). Whatever this accepts, the generated path
    /// reads identically, and what it declines the generated path refuses too (tests compare both).
    public static func read(json bytes: UnsafeRawBufferPointer) -> PlanSubmission? {
        var reader = PlanSubmissionReader(expectedBytes: bytes.count)
        do {
            try reader.read(bytes)
            return try reader.finish()
        } catch {
            return nil
        }
    }

    /// A dataset object's members.
    static func dataset(_ parser: inout JSONParser) throws(JSONSyntaxError) -> (id: UUID, extra: JSONValue?) {
        var id: UUID?
        var extra: JSONValue?
        var seen = Seen()
        try parser.readObject { (parser: inout JSONParser, name: String) throws(JSONSyntaxError) in
            switch name {
            case "id" where seen.first(name): id = try uuid(&parser)
            case "extra" where seen.first(name): extra = try freeForm(&parser)
            default: try parser.skipValue()
            }
        }
        guard let id else { throw parser.failure("'id' is missing") }
        return (id, extra)
    }

    static func dataProduct(_ parser: inout JSONParser) throws(JSONSyntaxError) -> DataProduct {
        var id: UUID?
        var compute: Compute?
        var name: String?
        var version: String?
        var eager: Bool?
        var passthrough: JSONValue?
        var extra: JSONValue?
        var seen = Seen()
        try parser.readObject { (parser: inout JSONParser, member: String) throws(JSONSyntaxError) in
            switch member {
            case "id" where seen.first(member): id = try uuid(&parser)
            case "compute" where seen.first(member):
                let text = try parser.readString()
                guard let value = Compute(rawValue: text) else {
                    throw parser.failure("'compute' must be one of \(Compute.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                compute = value
            case "name" where seen.first(member): name = try parser.readString()
            case "version" where seen.first(member): version = try parser.readString()
            case "eager" where seen.first(member): eager = try parser.readBool()
            case "passthrough" where seen.first(member): passthrough = try freeForm(&parser)
            case "extra" where seen.first(member): extra = try freeForm(&parser)
            default: try parser.skipValue()
            }
        }
        guard let id, let compute, let name, let version, let eager else {
            let missing = ["id", "compute", "name", "version", "eager"].filter { !seen.names.contains($0) }
            throw parser.failure("missing \(missing.map { "'\($0)'" }.joined(separator: ", "))")
        }
        return DataProduct(
            id: id, compute: compute, name: name, version: version, eager: eager, passthrough: passthrough, extra: extra)
    }

    static func dependency(_ parser: inout JSONParser) throws(JSONSyntaxError) -> Dependency {
        var parentId: UUID?
        var childId: UUID?
        var extra: JSONValue?
        var seen = Seen()
        try parser.readObject { (parser: inout JSONParser, member: String) throws(JSONSyntaxError) in
            switch member {
            case "parent_id" where seen.first(member): parentId = try uuid(&parser)
            case "child_id" where seen.first(member): childId = try uuid(&parser)
            case "extra" where seen.first(member): extra = try freeForm(&parser)
            default: try parser.skipValue()
            }
        }
        guard let parentId, let childId else {
            throw parser.failure("missing \(parentId == nil ? "'parent_id'" : "'child_id'")")
        }
        return Dependency(parentId: parentId, childId: childId, extra: extra)
    }

    /// A UUID as the generated decoder reads one (`UUID(uuidString:)` of the string): written
    /// plainly, the usual case, it is read straight from the bytes.
    private static func uuid(_ parser: inout JSONParser) throws(JSONSyntaxError) -> UUID {
        if let plain = try? parser.readUUID() { return plain }
        let text = try parser.readString()
        guard let uuid = UUID(uuidString: text) else { throw parser.failure("'\(text)' is not a UUID") }
        return uuid
    }

    /// Free-form JSON as the API takes it: null is no value; nesting deeper than the API allows is refused.
    private static func freeForm(_ parser: inout JSONParser) throws(JSONSyntaxError) -> JSONValue? {
        if parser.readNull() { return nil }
        let node = try parser.readValue()
        switch node {
        case .array, .object:
            guard node.depth <= JSONValue.maxDepth else {
                throw parser.failure("free-form JSON nests arrays and objects deeper than \(JSONValue.maxDepth) levels")
            }
        default: break
        }
        return JSONValue(node)
    }

    /// The schema's member names already read in one object: of a repeated name, the first
    /// counts, as in `JSONDecoder`.
    private struct Seen {
        private(set) var names: [String] = []

        /// Whether `name` is read here for the first time.
        mutating func first(_ name: String) -> Bool {
            guard !names.contains(name) else { return false }
            names.append(name)
            return true
        }
    }
}

/// The submission `PlanSubmissionFastPath` read for the request in progress (a task-local value).
enum PlanSubmissionSlot {
    /// Taken by the handler: held nowhere else, the submission is let go of when the store has
    /// made the plan from it (`Store.apply`), not when the request ends.
    @TaskLocal static var current: Handoff<PlanSubmission>?
}

/// Reads `POST /api/plan` bodies as they arrive (`PlanSubmissionReader`) once the caller is
/// authenticated (it runs after `AuthMiddleware`); when that succeeds, the handler takes the
/// submission from `PlanSubmissionSlot` and the generated code decodes only a tiny stand-in body.
/// A body it declines goes to the generated decoder as it came.
struct PlanSubmissionFastPath: ServerMiddleware {
    /// Told the size of a submission on its way in, in data products (`PlanCache.makeRoom`): a big
    /// one's memory comes out of what the plan cache holds.
    var makeRoom: @Sendable (_ products: Int) -> Void = { _ in }

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        guard operationID == Operations.SubmitPlan.id, let body else { return try await next(request, body, metadata) }
        switch try await Self.read(body, makeRoom: makeRoom) {
        case .submission(let handoff):
            return try await PlanSubmissionSlot.$current.withValue(handoff) {
                try await next(request, HTTPBody(Self.standIn), metadata)
            }
        case .declined(let bytes):
            return try await next(request, HTTPBody(bytes), metadata)
        }
    }

    private enum Read {
        case submission(Handoff<PlanSubmission>)
        case declined([UInt8])
    }

    /// The body read as it arrives (`PlanSubmissionReader`): as a submission, or (declined) as
    /// its bytes for the generated decoder to answer. Only the submission outlives this call, and a
    /// big body is not held: beyond `keptBytes` its bytes are let go as they are read, and such a
    /// body, declined, is answered here with the reader's reason once it has been read to its end.
    private static func read(_ body: HTTPBody, makeRoom: (Int) -> Void) async throws -> Read {
        // The body's size is bounded where it streams in (`RequestLimitsMiddleware`), and a
        // `Content-Length` beyond that bound was refused before.
        let length: Int? = if case .known(let length) = body.length { Int(clamping: length) } else { nil }
        if let length { makeRoom(length / PlanCache.bytesPerProduct) }
        var reader = PlanSubmissionReader(expectedBytes: length)
        var kept: [UInt8]? = []
        var declined: PlanSubmissionReader.Declined?
        var received = 0
        for try await chunk in body {
            received += chunk.count
            if let held = kept, held.count + chunk.count > keptBytes {
                // Too big to hand on whole: read as it arrives.
                kept = nil
                if length == nil { makeRoom(received / PlanCache.bytesPerProduct) }
            }
            kept?.append(contentsOf: chunk)
            // Once declined, the rest is read and let go, and the answer follows the whole body
            // (not relying on the server to drain a body its handler left unread).
            guard declined == nil else { continue }
            let outcome = chunk.withUnsafeBytes { bytes in
                Result { () throws(PlanSubmissionReader.Declined) in try reader.read(bytes) }
            }
            if case .failure(let error) = outcome { declined = error }
        }
        let refusal: PlanSubmissionReader.Declined
        if let declined {
            refusal = declined
        } else {
            do { return .submission(Handoff(try reader.finish())) } catch { refusal = error }
        }
        if let kept { return .declined(kept) }
        throw Problem.badRequest("The plan submission cannot be read: \(refusal.reason)")
    }

    /// A declined body up to this size goes to the generated decoder, which answers with its own
    /// words; a bigger one is refused with the reader's reason, its bytes not held.
    static let keptBytes = 1 << 20

    private static let standIn = #"{"dataset":{"id":"00000000-0000-0000-0000-000000000000"},"data_products":[],"dependencies":[]}"#
}

extension PlanSubmission.DataProduct {
    /// The fewest bytes a product in a submission takes, with the comma after it:
    /// `{"id":"<36>","compute":"cams","name":"","version":"","eager":true},`.
    static let leastJSONBytes = 99
}

extension PlanSubmission.Dependency {
    /// The fewest bytes a dependency takes, with the comma after it: `{"parent_id":"<36>","child_id":"<36>"},`.
    static let leastJSONBytes = 103
}
