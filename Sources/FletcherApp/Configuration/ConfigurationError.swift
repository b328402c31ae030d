/// A configuration value Fletcher cannot use; it names the variable and what is wrong, and stops start-up.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible, Equatable {
    public var variable: String
    public var problem: String

    public init(_ variable: String, _ problem: String) {
        self.variable = variable
        self.problem = problem
    }

    public var description: String { "configuration error: \(variable): \(problem)" }
}
