import Crypto
public import FletcherDomain
public import FletcherStore
import FletcherJSON
public import Foundation

/// One receiver of events (one entry of `WEBHOOKS`): where they go, which ones, in which format,
/// and the key that signs them.
public struct WebhookEndpoint: Sendable, Hashable {
    /// Where events are posted (http or https).
    public var url: URL
    /// The key signing messages (the bytes `whsec_…` holds in base64); nil: messages go unsigned.
    /// Required for `standard`.
    public var secret: [UInt8]?
    /// The types sent.
    public var events: Set<PlanEventType>
    /// The datasets whose events are sent; nil: every dataset's, and the events of no dataset
    /// (a compute platform's circuit).
    public var datasets: Set<UUID>?
    public var format: WebhookFormat
    /// Deliveries to it in flight at once, across processes; nil: `WebhookSettings.maxInFlight`.
    public var maxInFlight: Int?

    public init(
        url: URL, secret: [UInt8]? = nil, events: Set<PlanEventType>, datasets: Set<UUID>? = nil, format: WebhookFormat = .standard,
        maxInFlight: Int? = nil
    ) {
        self.url = url
        self.secret = secret
        self.events = events
        self.datasets = datasets
        self.format = format
        self.maxInFlight = maxInFlight
    }

    /// The endpoint's stable key, kept with its queued deliveries: the first 16 hex digits of the
    /// SHA-256 of `format` and `url` (`standard https://…`). Changing the secret, the events or
    /// the datasets keeps it, so pending deliveries still go out; a new url or format is a new
    /// endpoint.
    public var id: String {
        let digest = SHA256.hash(data: Array("\(format.rawValue) \(url.absoluteString)".utf8))
        // Written digit by digit: `String(format:)` made this a twentieth of a busy server's work.
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: digest.prefix(8).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0xF)]] }, as: UTF8.self)
    }

    /// The events that go to this endpoint: its types, of its datasets (an event of no dataset
    /// only when `datasets` is nil).
    public var subscription: EventSubscription { EventSubscription(types: events, datasets: datasets) }
}

extension WebhookEndpoint: CustomStringConvertible {
    /// The endpoint without its secret, for logs.
    public var description: String {
        "\(format.rawValue) webhook \(url.absoluteString) (\(id))\(secret == nil ? "" : ", signed")"
    }
}

/// The body and headers an endpoint gets (`WebhookMessage`).
public enum WebhookFormat: String, Sendable, Hashable, CaseIterable {
    /// Standard Webhooks: signed `{type, timestamp, data}`.
    case standard
    /// A Slack incoming webhook: `{text}`.
    case slack
    /// CloudEvents 1.0, structured JSON.
    case cloudevents
}

/// Why `WEBHOOKS` cannot be used: which entry, which key and what is wrong.
public struct WebhookConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

extension WebhookEndpoint {
    /// The prefix of a Standard Webhooks secret; base64 follows.
    public static let secretPrefix = "whsec_"
    /// The key lengths Standard Webhooks allows, in bytes.
    public static let secretBytes = 24...64
    static let keys = ["url", "secret", "events", "datasets", "format", "max_in_flight"]
    /// The values `max_in_flight` may take.
    public static let maxInFlightRange = 1...1_000

    /// Parses `WEBHOOKS`: a JSON list of `{"url", "secret"?, "events", "datasets"?, "format"?, "max_in_flight"?}`.
    /// `url` is http or https; `secret` is `whsec_` and base64 of 24 to 64 bytes, required for
    /// `standard`, optional for the others (which are then signed the same way); `events` is a
    /// non-empty list of types or patterns (`data_product.*`, `*`), each naming at least one
    /// type; `datasets` a non-empty list of dataset ids; `format` one of `standard` (the default),
    /// `slack`, `cloudevents`; `max_in_flight` a whole number of deliveries in flight at once
    /// (`maxInFlightRange`). Two entries may not share a url and format (their `id`).
    public static func parseList(_ json: String) throws(WebhookConfigurationError) -> [WebhookEndpoint] {
        let shape = #"expected a JSON list of {"url", "secret"?, "events", "datasets"?, "format"?, "max_in_flight"?} objects"#
        let root: JSONNode
        do {
            root = try JSONValue(parsing: json).node
        } catch let error as JSONSyntaxError {
            throw WebhookConfigurationError("\(shape); \(error)")
        } catch {
            throw WebhookConfigurationError(shape)
        }
        guard case .array(let entries) = root else { throw WebhookConfigurationError(shape) }
        var endpoints: [WebhookEndpoint] = []
        var seen: [String: Int] = [:]
        for (index, entry) in entries.enumerated() {
            let endpoint = try parse(entry, index: index)
            if let first = seen[endpoint.id] {
                throw WebhookConfigurationError(
                    "entry \(index) has the url and format of entry \(first); give each endpoint one entry")
            }
            seen[endpoint.id] = index
            endpoints.append(endpoint)
        }
        return endpoints
    }

    private static func parse(_ entry: JSONNode, index: Int) throws(WebhookConfigurationError) -> WebhookEndpoint {
        func fail(_ problem: String) -> WebhookConfigurationError { WebhookConfigurationError("entry \(index): \(problem)") }
        guard case .object(let members) = entry else { throw fail("not an object") }
        if let unknown = members.keys.sorted().first(where: { !keys.contains($0) }) {
            throw fail("unknown key \"\(unknown)\" (keys are \(keys.joined(separator: ", ")))")
        }

        guard case .string(let urlText) = members["url"] ?? .null else { throw fail(#""url" is missing or not a string"#) }
        guard let url = URL(string: urlText), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host?.isEmpty == false
        else { throw fail(#""url" must be an http(s) URL, got '\#(urlText)'"#) }

        var format = WebhookFormat.standard
        switch members["format"] ?? .null {
        case .null: break
        case .string(let name):
            guard let known = WebhookFormat(rawValue: name) else {
                throw fail(#""format" must be one of \#(WebhookFormat.allCases.map(\.rawValue).joined(separator: ", ")), got '\#(name)'"#)
            }
            format = known
        default:
            throw fail(#""format" must be one of \#(WebhookFormat.allCases.map(\.rawValue).joined(separator: ", "))"#)
        }

        var secret: [UInt8]?
        switch members["secret"] ?? .null {
        case .null:
            guard format != .standard else {
                throw fail(
                    #""secret" is required for the standard format "#
                        + "(whsec_ and base64 of \(secretBytes.lowerBound) to \(secretBytes.upperBound) random bytes)")
            }
        case .string(let text):
            secret = try parseSecret(text, fail: fail)
        default:
            throw fail(#""secret" must be a string whsec_…"#)
        }

        guard case .array(let patterns) = members["events"] ?? .null, !patterns.isEmpty else {
            throw fail(#""events" must be a non-empty list of event types or patterns such as "data_product.*""#)
        }
        var events = Set<PlanEventType>()
        for pattern in patterns {
            guard case .string(let text) = pattern else { throw fail(#""events" must hold strings"#) }
            let matched = PlanEventType.matching(text)
            guard !matched.isEmpty else {
                throw fail(
                    #""events": '\#(text)' names no event type (types are \#(PlanEventType.allCases.map(\.rawValue).joined(separator: ", ")); "#
                        + #"a prefix such as "dataset.*", or "*", names several)"#)
            }
            events.formUnion(matched)
        }

        var datasets: Set<UUID>?
        switch members["datasets"] ?? .null {
        case .null: break
        case .array(let ids):
            guard !ids.isEmpty else { throw fail(#""datasets" is empty; leave it out for every dataset"#) }
            var set = Set<UUID>()
            for id in ids {
                guard case .string(let text) = id, let uuid = JSONParser.uuid(spelt: text) else {
                    throw fail(#""datasets" must hold dataset ids (UUIDs)"#)
                }
                set.insert(uuid)
            }
            datasets = set
        default:
            throw fail(#""datasets" must be a list of dataset ids"#)
        }
        var maxInFlight: Int?
        switch members["max_in_flight"] ?? .null {
        case .null: break
        case .integer(let count) where maxInFlightRange.contains(count):
            maxInFlight = count
        default:
            throw fail(#""max_in_flight" must be a whole number from \#(maxInFlightRange.lowerBound) to \#(maxInFlightRange.upperBound)"#)
        }
        return WebhookEndpoint(url: url, secret: secret, events: events, datasets: datasets, format: format, maxInFlight: maxInFlight)
    }

    /// The key bytes of a `whsec_…` secret.
    private static func parseSecret(
        _ text: String, fail: (String) -> WebhookConfigurationError
    ) throws(WebhookConfigurationError) -> [UInt8] {
        guard text.hasPrefix(secretPrefix) else { throw fail(#""secret" must start with "whsec_" (then base64)"#) }
        // Padding may be left out, as the reference libraries allow.
        var base64 = String(text.dropFirst(secretPrefix.count))
        if base64.utf8.count % 4 != 0 { base64 += String(repeating: "=", count: 4 - base64.utf8.count % 4) }
        guard let key = Data(base64Encoded: base64) else {
            throw fail(#""secret" must be "whsec_" and base64"#)
        }
        guard secretBytes.contains(key.count) else {
            throw fail(#""secret" must hold \#(secretBytes.lowerBound) to \#(secretBytes.upperBound) bytes; it holds \#(key.count)"#)
        }
        return Array(key)
    }
}
