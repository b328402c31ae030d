public import FletcherDomain
import Foundation

extension PlanEvent {
    /// The event's `data` as a canonical JSON object: what the stores persist and every reader of
    /// the feed is given (times as RFC 3339 text with microseconds).
    public var dataJSON: JSONValue {
        JSONValue.object(data.mapValues(\.json))
    }
}

extension EventValue {
    /// The value as JSON.
    public var json: JSONValue {
        switch self {
        case .bool(let value): .bool(value)
        case .integer(let value): .integer(value)
        case .number(let value): .number(value)
        case .string(let value): .string(value)
        case .time(let value):
            {
                var json = JSONBytes(capacity: JSONBytes.dateLength + 2)
                json.date(value)
                return JSONValue(canonicalText: json.text)
            }()
        case .null: .null
        }
    }
}
