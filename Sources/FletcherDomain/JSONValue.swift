/// A free-form JSON value: a dataset's or data product's `extra`, a `passthrough` or a `passback`.
///
/// Held as its canonical text — compact, object keys sorted — so the same value always has the same
/// text, equal values compare equal by it, and writing one into an answer is a copy. A plan holds
/// one or more per data product: as a tree of dictionaries `{"n": 1}` takes about 150 bytes of heap
/// (15 MB for a 100,000-product plan's passthroughs); as text up to 15 bytes long it takes none
/// (Swift keeps such strings inline), and longer text takes its length and a string's header.
///
/// The rules only carry these values; reading and writing JSON is FletcherJSON's
/// (`JSONValue(parsing:)`, `JSONValue(_:)` of a `JSONNode`, `node`, and the `array`, `object`,
/// `number` and `string` makers).
public struct JSONValue: Sendable, Hashable {
    /// Compact JSON text with sorted keys: what the stores persist, search matches against and answers carry.
    public let text: String

    /// The value whose canonical text `text` is: only for text a canonical JSON writer wrote
    /// (FletcherJSON's); any other text would break equality by text.
    public init(canonicalText text: String) {
        self.text = text
    }

    public static let null = JSONValue(canonicalText: "null")

    public static func bool(_ value: Bool) -> JSONValue { JSONValue(canonicalText: value ? "true" : "false") }

    public static func integer(_ value: Int) -> JSONValue { JSONValue(canonicalText: String(value)) }

    public static func number(_ value: Double) -> JSONValue { JSONValue(canonicalText: numberText(value)) }

    /// A number's canonical text: whole numbers below 10^15 without a fraction, others in Swift's
    /// shortest form that reads back the same, and `null` for what JSON cannot hold.
    public static func numberText(_ number: Double) -> String {
        if number.isFinite, number == number.rounded(), abs(number) < 1e15 { return String(Int(number)) }
        return number.isFinite ? "\(number)" : "null"
    }
}
