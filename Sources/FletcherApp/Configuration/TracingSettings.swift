import Foundation
public import Logging
public import OTel

/// OpenTelemetry traces, set by the SDK's standard `OTEL_*` variables and sent as OTLP over HTTP
/// (protobuf). Off unless `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
/// `OTEL_TRACES_EXPORTER=otlp` is set; `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`
/// keeps them off. Every variable is read here, once, and a value Fletcher cannot honour (gRPC,
/// gzip, a propagator other than W3C trace context…) stops start-up naming it, traces on or off:
/// the SDK itself would ignore it with a warning, or stop the process later.
public struct TracingSettings: Sendable {
    /// The OTLP/HTTP URL spans are posted to (`…/v1/traces`).
    public var endpoint: String
    /// `OTEL_SERVICE_NAME`; "fletcher" by default.
    public var serviceName = "fletcher"
    /// `OTEL_RESOURCE_ATTRIBUTES`: `key=value` pairs, comma-separated, values percent-encoded.
    public var resourceAttributes: [String: String] = [:]
    /// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
    public var sampler = Sampler.parentBasedAlwaysOn
    /// `OTEL_PROPAGATORS`: `tracecontext` (the default) reads a caller's `traceparent` and sends
    /// one with every trigger, cancel and webhook; `none` does neither.
    public var propagates = true
    /// `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`: sent with every export (an API key, say).
    public var headers: [(String, String)] = []
    /// `OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT`, in milliseconds: one export's time limit.
    public var timeout = Duration.seconds(10)
    /// `OTEL_EXPORTER_OTLP_(TRACES_)CERTIFICATE`, `…CLIENT_KEY`, `…CLIENT_CERTIFICATE`: PEM files for
    /// an https endpoint.
    public var certificate: String?
    public var clientKey: String?
    public var clientCertificate: String?
    /// `OTEL_BSP_SCHEDULE_DELAY` and `OTEL_BSP_EXPORT_TIMEOUT` (milliseconds), `OTEL_BSP_MAX_QUEUE_SIZE`
    /// and `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`: spans are exported in batches; past a full queue new
    /// spans are dropped (never a request slowed).
    public var scheduleDelay = Duration.milliseconds(5000)
    public var exportTimeout = Duration.milliseconds(30000)
    public var maxQueueSize = 2048
    public var maxExportBatchSize = 512

    public enum Sampler: Sendable, Equatable {
        case alwaysOn, alwaysOff, parentBasedAlwaysOn, parentBasedAlwaysOff
        case traceIDRatio(Double)
        case parentBasedTraceIDRatio(Double)
    }

    public init(endpoint: String) {
        self.endpoint = endpoint
    }

    /// The settings the variables give; nil when traces are off.
    static func read(_ variables: ConfigVariables) throws -> TracingSettings? {
        func fail(_ variable: String, _ problem: String) -> ConfigurationError { ConfigurationError(variable, problem) }
        /// The traces-specific variable (`OTEL_EXPORTER_OTLP_TRACES_X`) if set, else the shared one.
        func exporterVariable(_ suffix: String) -> (name: String, value: String)? {
            for name in ["OTEL_EXPORTER_OTLP_TRACES_\(suffix)", "OTEL_EXPORTER_OTLP_\(suffix)"] {
                if let value = variables.text(name) { return (name, value) }
            }
            return nil
        }
        // Every variable is checked, traces on or off: turning them on must not find one wrong.
        var enabled = true
        if let disabled = variables.text("OTEL_SDK_DISABLED") {
            switch disabled.lowercased() {
            case "true": enabled = false
            case "false": break
            default: throw fail("OTEL_SDK_DISABLED", "expected true or false, got '\(disabled)'")
            }
        }
        let tracesEndpoint = variables.text("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        let sharedEndpoint = variables.text("OTEL_EXPORTER_OTLP_ENDPOINT")
        switch variables.text("OTEL_TRACES_EXPORTER")?.lowercased() {
        case "none": enabled = false
        case "otlp": break
        case nil: if tracesEndpoint == nil && sharedEndpoint == nil { enabled = false }
        case let other?:
            throw fail("OTEL_TRACES_EXPORTER", "expected otlp or none (Fletcher sends spans as OTLP over HTTP), got '\(other)'")
        }
        var endpoint = "http://localhost:4318/v1/traces"
        if let tracesEndpoint {
            guard AppConfiguration.isHTTPURL(tracesEndpoint) else {
                throw fail("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "expected an http(s) URL such as http://collector:4318/v1/traces, got '\(tracesEndpoint)'")
            }
            endpoint = tracesEndpoint
        } else if let sharedEndpoint {
            guard AppConfiguration.isHTTPURL(sharedEndpoint) else {
                throw fail("OTEL_EXPORTER_OTLP_ENDPOINT", "expected an http(s) URL such as http://collector:4318, got '\(sharedEndpoint)'")
            }
            // The signal's path goes after the base URL's own path (OTLP exporter specification).
            endpoint = sharedEndpoint.hasSuffix("/") ? sharedEndpoint + "v1/traces" : sharedEndpoint + "/v1/traces"
        }
        var settings = TracingSettings(endpoint: endpoint)
        if let (name, value) = exporterVariable("PROTOCOL"), value != "http/protobuf" {
            let why =
                value == "grpc"
                ? "OTLP over gRPC is not built into Fletcher; use http/protobuf and the collector's HTTP port (4318)"
                : "expected http/protobuf (the only encoding Fletcher sends)"
            throw fail(name, "\(why), got '\(value)'")
        }
        if let (name, value) = exporterVariable("COMPRESSION"), value.lowercased() != "none" {
            throw fail(name, "expected none (spans are sent uncompressed), got '\(value)'")
        }
        if let (name, value) = exporterVariable("HEADERS") {
            settings.headers = try Self.pairs(value, variable: name).map { ($0.key, $0.value) }
        }
        if let (name, value) = exporterVariable("TIMEOUT") {
            settings.timeout = .milliseconds(try Self.wholeNumber(value, variable: name, minimum: 1))
        }
        for (suffix, path) in [("CERTIFICATE", \TracingSettings.certificate), ("CLIENT_KEY", \.clientKey), ("CLIENT_CERTIFICATE", \.clientCertificate)] {
            guard let (name, file) = exporterVariable(suffix) else { continue }
            guard FileManager.default.isReadableFile(atPath: file) else { throw fail(name, "cannot read the file '\(file)'") }
            settings[keyPath: path] = file
        }
        if (settings.clientKey == nil) != (settings.clientCertificate == nil) {
            throw fail(
                settings.clientKey == nil ? "OTEL_EXPORTER_OTLP_CLIENT_KEY" : "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                "a client certificate needs its key, and a key its certificate: set both or neither")
        }
        if let name = variables.text("OTEL_SERVICE_NAME") { settings.serviceName = name }
        if let attributes = variables.text("OTEL_RESOURCE_ATTRIBUTES") {
            settings.resourceAttributes = Dictionary(
                try Self.pairs(attributes, variable: "OTEL_RESOURCE_ATTRIBUTES").map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        }
        if let propagators = variables.text("OTEL_PROPAGATORS") {
            let names = Set(propagators.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
            guard names.isSubset(of: ["tracecontext", "none"]), !names.isEmpty else {
                throw fail(
                    "OTEL_PROPAGATORS", "expected tracecontext or none (Fletcher reads and sends W3C traceparent only), got '\(propagators)'")
            }
            settings.propagates = names.contains("tracecontext")
        }
        settings.sampler = try Self.sampler(variables.text("OTEL_TRACES_SAMPLER"), argument: variables.text("OTEL_TRACES_SAMPLER_ARG"))
        if let value = variables.text("OTEL_BSP_SCHEDULE_DELAY") {
            settings.scheduleDelay = .milliseconds(try Self.wholeNumber(value, variable: "OTEL_BSP_SCHEDULE_DELAY", minimum: 1))
        }
        if let value = variables.text("OTEL_BSP_EXPORT_TIMEOUT") {
            settings.exportTimeout = .milliseconds(try Self.wholeNumber(value, variable: "OTEL_BSP_EXPORT_TIMEOUT", minimum: 1))
        }
        if let value = variables.text("OTEL_BSP_MAX_QUEUE_SIZE") {
            settings.maxQueueSize = try Self.wholeNumber(value, variable: "OTEL_BSP_MAX_QUEUE_SIZE", minimum: 1, unit: "spans")
        }
        if let value = variables.text("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            settings.maxExportBatchSize = try Self.wholeNumber(value, variable: "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", minimum: 1, unit: "spans")
        }
        guard settings.maxExportBatchSize <= settings.maxQueueSize else {
            throw fail(
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                "must be at most OTEL_BSP_MAX_QUEUE_SIZE (\(settings.maxQueueSize)), got \(settings.maxExportBatchSize)")
        }
        return enabled ? settings : nil
    }

    /// `OTEL_TRACES_SAMPLER` (default `parentbased_always_on`) with its ratio `OTEL_TRACES_SAMPLER_ARG`
    /// (default 1), which only the ratio samplers read.
    static func sampler(_ name: String?, argument: String?) throws -> Sampler {
        func ratio() throws -> Double {
            guard let argument else { return 1 }
            guard let value = Double(argument), (0...1).contains(value) else {
                throw ConfigurationError("OTEL_TRACES_SAMPLER_ARG", "expected a sampling ratio from 0 to 1, got '\(argument)'")
            }
            return value
        }
        switch name?.lowercased() {
        case nil, "parentbased_always_on": return .parentBasedAlwaysOn
        case "parentbased_always_off": return .parentBasedAlwaysOff
        case "parentbased_traceidratio": return .parentBasedTraceIDRatio(try ratio())
        case "always_on": return .alwaysOn
        case "always_off": return .alwaysOff
        case "traceidratio": return .traceIDRatio(try ratio())
        case let other?:
            throw ConfigurationError(
                "OTEL_TRACES_SAMPLER",
                "expected always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or "
                    + "parentbased_traceidratio, got '\(other)'")
        }
    }

    /// A whole number of at least `minimum` (milliseconds unless `unit` says otherwise).
    private static func wholeNumber(_ text: String, variable: String, minimum: Int, unit: String = "milliseconds") throws -> Int {
        guard let value = Int(text), value >= minimum else {
            throw ConfigurationError(variable, "expected a whole number of \(unit), at least \(minimum), got '\(text)'")
        }
        return value
    }

    /// `key=value,key=value` with percent-encoded values (the W3C Baggage format the OpenTelemetry
    /// variables use), in order.
    private static func pairs(_ text: String, variable: String) throws -> [(key: String, value: String)] {
        try text.split(separator: ",").map { member in
            let parts = member.split(separator: "=", maxSplits: 1)
            let key = parts.first?.trimmingCharacters(in: .whitespaces) ?? ""
            guard parts.count == 2, !key.isEmpty,
                let value = parts[1].trimmingCharacters(in: .whitespaces).removingPercentEncoding
            else {
                throw ConfigurationError(variable, "expected key=value pairs separated by commas, got '\(member)'")
            }
            return (key, value)
        }
    }

    /// The SDK's configuration: traces only (logs and metrics have their own paths: standard error
    /// and `/metrics`), its own diagnostics logged by `logger`.
    public func otelConfiguration(logger: Logger) -> OTel.Configuration {
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        configuration.resourceAttributes = resourceAttributes
        configuration.propagators = propagates ? [.traceContext] : [.none]
        configuration.diagnosticLogger = .custom(logger)
        configuration.diagnosticLogLevel = .warning
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.traces.exporter = .otlp
        switch sampler {
        case .alwaysOn: configuration.traces.sampler = .alwaysOn
        case .alwaysOff: configuration.traces.sampler = .alwaysOff
        case .parentBasedAlwaysOn: configuration.traces.sampler = .parentBasedAlwaysOn
        case .parentBasedAlwaysOff: configuration.traces.sampler = .parentBasedAlwaysOff
        case .traceIDRatio(let ratio): configuration.traces.sampler = .traceIDRatio(ratio: ratio) ?? .traceIDRatio
        case .parentBasedTraceIDRatio(let ratio):
            configuration.traces.sampler = .parentBasedTraceIDRatio(ratio: ratio) ?? .parentBasedTraceIDRatio
        }
        configuration.traces.batchSpanProcessor.scheduleDelay = scheduleDelay
        configuration.traces.batchSpanProcessor.exportTimeout = exportTimeout
        configuration.traces.batchSpanProcessor.maxQueueSize = maxQueueSize
        configuration.traces.batchSpanProcessor.maxExportBatchSize = maxExportBatchSize
        configuration.traces.otlpExporter.endpoint = endpoint
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.traces.otlpExporter.compression = .none
        configuration.traces.otlpExporter.headers = headers
        configuration.traces.otlpExporter.timeout = timeout
        configuration.traces.otlpExporter.certificateFilePath = certificate
        configuration.traces.otlpExporter.clientKeyFilePath = clientKey
        configuration.traces.otlpExporter.clientCertificateFilePath = clientCertificate
        return configuration
    }
}
