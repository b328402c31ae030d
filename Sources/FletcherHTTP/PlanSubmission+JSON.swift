import FletcherAPI
import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation

extension PlanSubmission {
    /// A dataset object's members.
    static func dataset(_ parser: inout JSONParser) throws(JSONSyntaxError) -> (id: UUID, extra: JSONValue?, deadline: Date?) {
        var id: UUID?
        var extra: JSONValue?
        var deadline: Date?
        var seen = Seen()
        try parser.readObject { (parser: inout JSONParser, name: String) throws(JSONSyntaxError) in
            switch name {
            case "id" where seen.first(name): id = try uuid(&parser)
            case "extra" where seen.first(name): extra = try freeForm(&parser)
            case "deadline" where seen.first(name): deadline = try time(&parser, name)
            default: try parser.skipValue()
            }
        }
        guard let id else { throw parser.failure("'id' is missing") }
        return (id, extra, deadline)
    }

    static func dataProduct(_ parser: inout JSONParser) throws(JSONSyntaxError) -> DataProduct {
        var id: UUID?
        var compute: Compute?
        var name: String?
        var version: String?
        var eager: Bool?
        var passthrough: JSONValue?
        var extra: JSONValue?
        var limits = ProductLimits.none
        var deadline: Date?
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
            case "retries" where seen.first(member): limits.retries = try integer(&parser, member)
            case "max_queued_s" where seen.first(member): limits.maxQueuedSeconds = try number(&parser, member)
            case "max_running_s" where seen.first(member): limits.maxRunningSeconds = try number(&parser, member)
            case "deadline" where seen.first(member): deadline = try time(&parser, member)
            default: try parser.skipValue()
            }
        }
        guard let id, let compute, let name, let version, let eager else {
            let missing = ["id", "compute", "name", "version", "eager"].filter { !seen.names.contains($0) }
            throw parser.failure("missing \(missing.map { "'\($0)'" }.joined(separator: ", "))")
        }
        return DataProduct(
            id: id, compute: compute, name: name, version: version, eager: eager, passthrough: passthrough, extra: extra,
            limits: limits, deadline: deadline)
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

    /// An optional integer as the generated decoder reads an `Int?`: null is none; a number with a
    /// fraction, or anything but a number, is refused (the range is the rules': `PlanMutation.validateRequest`).
    private static func integer(_ parser: inout JSONParser, _ member: String) throws(JSONSyntaxError) -> Int? {
        if parser.readNull() { return nil }
        guard case .integer(let value) = try parser.readValue() else { throw parser.failure("'\(member)' must be an integer") }
        return value
    }

    /// An optional RFC 3339 time as the generated decoder reads a `Nullable<Date>`
    /// (`RFC3339DateTranscoder`): null is none.
    private static func time(_ parser: inout JSONParser, _ member: String) throws(JSONSyntaxError) -> Date? {
        if parser.readNull() { return nil }
        guard case .string(let text) = try parser.readValue(), let date = try? RFC3339DateTranscoder().decode(text) else {
            throw parser.failure("'\(member)' must be an RFC 3339 date-time")
        }
        return date
    }

    /// An optional number as the generated decoder reads a `Double?`: null is none.
    private static func number(_ parser: inout JSONParser, _ member: String) throws(JSONSyntaxError) -> Double? {
        if parser.readNull() { return nil }
        switch try parser.readValue() {
        case .integer(let value): return Double(value)
        case .number(let value): return value
        default: throw parser.failure("'\(member)' must be a number")
        }
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

extension PlanSubmission.DataProduct {
    /// The fewest bytes a product in a submission takes, with the comma after it:
    /// `{"id":"<36>","compute":"cams","name":"","version":"","eager":true},`.
    static let leastJSONBytes = 99
}

extension PlanSubmission.Dependency {
    /// The fewest bytes a dependency takes, with the comma after it: `{"parent_id":"<36>","child_id":"<36>"},`.
    static let leastJSONBytes = 103
}
