import PostgresNIO

/// SQL text with bound values, written with interpolation like a `PostgresQuery`, but a part that
/// can be interpolated into another: statements built apart become one query (one round trip),
/// their binds numbered in order when it is made.
struct SQL: ExpressibleByStringInterpolation {
    fileprivate enum Piece {
        case text(String)
        case value(any PostgresThrowingDynamicTypeEncodable)
        case null
    }

    private var pieces: [Piece]

    init(stringLiteral text: String) {
        pieces = [.text(text)]
    }

    init(stringInterpolation: Interpolation) {
        pieces = stringInterpolation.pieces
    }

    /// The query to send, `$1`, `$2`… in the order the values appear.
    func query() throws -> PostgresQuery {
        var query = PostgresQuery.StringInterpolation(literalCapacity: 256, interpolationCount: pieces.count)
        for piece in pieces {
            switch piece {
            case .text(let text): query.appendLiteral(text)
            case .value(let value): try query.appendInterpolation(value)
            case .null: query.appendInterpolation(String?.none)
            }
        }
        return PostgresQuery(stringInterpolation: query)
    }

    /// The bound values alone, in order: for a statement whose text is already prepared.
    func bindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: pieces.count / 2)
        for piece in pieces {
            switch piece {
            case .text: continue
            case .value(let value): try bindings.append(value)
            case .null: bindings.appendNull()
            }
        }
        return bindings
    }

    struct Interpolation: StringInterpolationProtocol {
        fileprivate var pieces: [Piece] = []

        init(literalCapacity: Int, interpolationCount: Int) {
            pieces.reserveCapacity(interpolationCount * 2 + 1)
        }

        mutating func appendLiteral(_ literal: String) {
            if !literal.isEmpty { pieces.append(.text(literal)) }
        }

        /// A bound value.
        mutating func appendInterpolation(_ value: some PostgresThrowingDynamicTypeEncodable) {
            pieces.append(.value(value))
        }

        /// A bound value or NULL.
        mutating func appendInterpolation(_ value: (some PostgresThrowingDynamicTypeEncodable)?) {
            if let value { pieces.append(.value(value)) } else { pieces.append(.null) }
        }

        /// Text of the statement's own, written as it is: never a value from outside.
        mutating func appendInterpolation(unescaped text: String) {
            pieces.append(.text(text))
        }

        /// Another part, its text and values in place.
        mutating func appendInterpolation(_ part: SQL) {
            pieces += part.pieces
        }
    }
}

extension Array where Element == SQL {
    /// The parts one after another, `separator` between them.
    func joined(separator: String) -> SQL {
        var joined: SQL = ""
        for (index, part) in enumerated() {
            joined = index == 0 ? "\(joined)\(part)" : "\(joined)\(unescaped: separator)\(part)"
        }
        return joined
    }
}
