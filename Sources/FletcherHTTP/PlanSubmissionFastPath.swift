import FletcherAPI
public import FletcherDomain
import FletcherStore
import Foundation
import HTTPTypes
import OpenAPIRuntime

extension PlanSubmission {
    /// Reads a submission (`openapi.yaml`'s `PlanSubmission`) straight from a request's bytes; nil
    /// when the body is anything but a well-formed, acceptable submission written plainly — then
    /// the generated decoder reads it and says what is wrong.
    ///
    /// Foundation's `JSONDecoder` through the generated types took 65 % of the server's time for a
    /// 100,000-product submission (`perf`, 8 s of 13). Whatever this accepts, the generated path
    /// reads identically (tests compare both); it declines rather than decide anything doubtful:
    /// a repeated member name, a UUID or literal written with escapes, a NUL character, free-form
    /// JSON nested deeper than the API allows.
    ///
    /// Each array is made once, for as many rows as the rest of the body could hold (rows grown one
    /// by one are copied as they double: a 100,000-product submission's dependencies were copied
    /// beside the body at the server's peak); untouched places take no memory, and `trimmed()`
    /// makes arrays of the rows' size once the body is gone.
    public static func read(json bytes: UnsafeRawBufferPointer) -> PlanSubmission? {
        try? JSONParser.read(bytes, validatingUTF8: true) { (parser: inout JSONParser) throws(JSONSyntaxError) in
            var datasetId: UUID?
            var datasetExtra: JSONValue?
            var dataProducts: [DataProduct]?
            var dependencies: [Dependency]?
            var seen = Seen()
            try parser.readObject { (parser: inout JSONParser, name: String) throws(JSONSyntaxError) in
                switch name {
                case "dataset":
                    try seen.first(name)
                    var seenInDataset = Seen()
                    try parser.readObject { (parser: inout JSONParser, name: String) throws(JSONSyntaxError) in
                        switch name {
                        case "id":
                            try seenInDataset.first(name)
                            datasetId = try parser.readUUID()
                        case "extra":
                            try seenInDataset.first(name)
                            datasetExtra = try freeForm(&parser)
                        default: _ = try parser.readValue()
                        }
                    }
                case "data_products":
                    try seen.first(name)
                    var products: [DataProduct] = []
                    products.reserveCapacity(parser.remainingBytes / DataProduct.leastJSONBytes)
                    try parser.readArray { (parser: inout JSONParser) throws(JSONSyntaxError) in
                        products.append(try dataProduct(&parser))
                    }
                    dataProducts = products
                case "dependencies":
                    try seen.first(name)
                    var read: [Dependency] = []
                    read.reserveCapacity(parser.remainingBytes / Dependency.leastJSONBytes)
                    try parser.readArray { (parser: inout JSONParser) throws(JSONSyntaxError) in
                        read.append(try dependency(&parser))
                    }
                    dependencies = read
                default: _ = try parser.readValue()
                }
            }
            guard let datasetId, let dataProducts, let dependencies, !parser.sawNUL else { throw declined }
            return PlanSubmission(
                datasetId: datasetId, datasetExtra: datasetExtra, dataProducts: dataProducts, dependencies: dependencies)
        }
    }

    /// The same submission in arrays of about its rows' size.
    func trimmed() -> PlanSubmission {
        PlanSubmission(
            datasetId: datasetId, datasetExtra: datasetExtra, dataProducts: dataProducts.trimmed(),
            dependencies: dependencies.trimmed())
    }

    private static func dataProduct(_ parser: inout JSONParser) throws(JSONSyntaxError) -> DataProduct {
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
            case "id":
                try seen.first(member)
                id = try parser.readUUID()
            case "compute":
                try seen.first(member)
                guard let value = Compute(rawValue: try parser.readString()) else { throw declined }
                compute = value
            case "name":
                try seen.first(member)
                name = try parser.readString()
            case "version":
                try seen.first(member)
                version = try parser.readString()
            case "eager":
                try seen.first(member)
                eager = try parser.readBool()
            case "passthrough":
                try seen.first(member)
                passthrough = try freeForm(&parser)
            case "extra":
                try seen.first(member)
                extra = try freeForm(&parser)
            default: _ = try parser.readValue()
            }
        }
        guard let id, let compute, let name, let version, let eager else { throw declined }
        return DataProduct(
            id: id, compute: compute, name: name, version: version, eager: eager, passthrough: passthrough, extra: extra)
    }

    private static func dependency(_ parser: inout JSONParser) throws(JSONSyntaxError) -> Dependency {
        var parentId: UUID?
        var childId: UUID?
        var extra: JSONValue?
        var seen = Seen()
        try parser.readObject { (parser: inout JSONParser, member: String) throws(JSONSyntaxError) in
            switch member {
            case "parent_id":
                try seen.first(member)
                parentId = try parser.readUUID()
            case "child_id":
                try seen.first(member)
                childId = try parser.readUUID()
            case "extra":
                try seen.first(member)
                extra = try freeForm(&parser)
            default: _ = try parser.readValue()
            }
        }
        guard let parentId, let childId else { throw declined }
        return Dependency(parentId: parentId, childId: childId, extra: extra)
    }

    /// Free-form JSON as the API takes it: null is no value; deeper nesting than allowed declines.
    private static func freeForm(_ parser: inout JSONParser) throws(JSONSyntaxError) -> JSONValue? {
        if parser.readNull() { return nil }
        let node = try parser.readValue()
        switch node {
        case .array, .object: guard node.depth <= JSONValue.maxDepth else { throw declined }
        default: break
        }
        return JSONValue(node)
    }

    private static let declined = JSONSyntaxError(offset: 0, reason: "left to the generated decoder")

    /// The schema's member names already read in one object.
    private struct Seen {
        private var names: [String] = []

        /// Declines a member read twice.
        mutating func first(_ name: String) throws(JSONSyntaxError) {
            guard !names.contains(name) else { throw declined }
            names.append(name)
        }
    }
}

/// The submission `PlanSubmissionFastPath` read for the request in progress (a task-local value).
enum PlanSubmissionSlot {
    /// Taken by the handler: held nowhere else, the submission is let go of when the store has
    /// made the plan from it (`Store.apply`), not when the request ends.
    @TaskLocal static var current: Handoff<PlanSubmission>?
}

/// Reads `POST /api/plan` bodies with `PlanSubmission.read(json:)` once the caller is
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

    /// The body, read whole: as a submission, or (declined) as its bytes. Only the submission
    /// outlives this call, so a big request's bytes are freed before its plan is worked on.
    private static func read(_ body: HTTPBody, makeRoom: (Int) -> Void) async throws -> Read {
        // The body's size is bounded where it streams in (`RequestLimitsMiddleware`), and a
        // `Content-Length` beyond that bound was refused before.
        var bytes: [UInt8] = []
        let length: Int? = if case .known(let length) = body.length { Int(clamping: length) } else { nil }
        if let length {
            makeRoom(length / PlanCache.bytesPerProduct)
            bytes.reserveCapacity(length)
        }
        for try await chunk in body { bytes.append(contentsOf: chunk) }
        if length == nil { makeRoom(bytes.count / PlanCache.bytesPerProduct) }
        guard let submission = bytes.withUnsafeBytes({ PlanSubmission.read(json: $0) }) else { return .declined(bytes) }
        // The body goes before the rows are copied into arrays of their size: never both at once.
        bytes = []
        return .submission(Handoff(submission.trimmed()))
    }

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

extension Array {
    /// The same elements, in storage of about their size when the array has many more places: a
    /// submission's rows live through the whole mutation.
    fileprivate func trimmed() -> [Element] {
        guard capacity - count > count / 4 else { return self }
        var trimmed: [Element] = []
        trimmed.reserveCapacity(count)
        trimmed.append(contentsOf: self)
        return trimmed
    }
}
