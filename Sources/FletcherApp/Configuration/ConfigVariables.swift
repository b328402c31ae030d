import Configuration

/// Fletcher's settings read from a `ConfigReader` by their environment variable names.
///
/// ConfigReader's typed readers (`int`, `double`, `string(forKey:as:)`) answer nil alike for a
/// variable that is unset and for one whose value does not convert (`MAX_CONNECTIONS=ten`), and the
/// default would then apply without a word. So each variable is also looked up as text: when it is
/// set and the typed reader gives nothing, or a value out of range, start-up stops with a
/// `ConfigurationError` that names the variable and quotes what it holds.
struct ConfigVariables {
    let reader: ConfigReader

    init(_ reader: ConfigReader) {
        self.reader = reader
    }

    /// The key the environment providers map to `variable` (`MAX_CONNECTIONS` is `max.connections`).
    static func key(_ variable: String) -> ConfigKey {
        ConfigKey(variable.lowercased().split(separator: "_").map(String.init))
    }

    /// `variable`'s text; nil when it is unset or set empty.
    func text(_ variable: String) -> String? {
        reader.string(forKey: Self.key(variable)).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `variable` read by `typed` and accepted by `valid`; nil when it is unset or set empty.
    /// Throws `ConfigurationError(variable, "<expected>, got '<text>'")` otherwise.
    func read<Value>(
        _ variable: String, expected: String, where valid: (Value) -> Bool = { _ in true }, _ typed: (ConfigKey) -> Value?
    ) throws -> Value? {
        guard let text = text(variable) else { return nil }
        guard let value = typed(Self.key(variable)), valid(value) else {
            throw ConfigurationError(variable, "\(expected), got '\(text)'")
        }
        return value
    }
}

/// A setting whose values are `Value`'s raw values, accepted in any case (`LOG_LEVEL=DEBUG`), for
/// ConfigReader's `string(forKey:as:)`.
struct AnyCase<Value: RawRepresentable<String>>: ExpressibleByConfigString {
    var value: Value

    init?(configString: String) {
        guard let value = Value(rawValue: configString.lowercased()) else { return nil }
        self.value = value
    }

    var description: String { value.rawValue }
}
