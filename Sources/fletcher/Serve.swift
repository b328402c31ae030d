import ArgumentParser
import FletcherApp
import FletcherMemory
import Foundation
import Hummingbird
import Logging
import OTel

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server (the default).")

    func run() async throws {
        MemoryReturn.configure(environment: ProcessInfo.processInfo.environment)
        let configuration = try loadConfiguration()
        let logger = bootstrapLogging(
            level: configuration.logLevel, format: configuration.logFormat, traceIds: configuration.tracing != nil)
        let tracing = try configuration.tracing.map { try bootstrapTracing($0, logger: logger) }
        let (application, credentials) = try await buildApplication(configuration: configuration, logger: logger, tracing: tracing)
        if let banner = credentials.developmentBanner {
            FileHandle.standardOutput.write(Data((banner + "\n").utf8))
        }
        try await application.runService()
    }
}

/// Loads the configuration, or exits non-zero with the message naming the variable at fault.
func loadConfiguration() throws -> AppConfiguration {
    do {
        return try AppConfiguration.load()
    } catch let error as ConfigurationError {
        FileHandle.standardError.write(Data("fletcher: \(error)\n".utf8))
        throw ExitCode(78)  // EX_CONFIG
    }
}

/// Logging to standard error in `format`; with `traceIds` (traces on), every line logged within a
/// span carries its `trace_id`, `span_id` and `trace_flags`.
func bootstrapLogging(level: Logger.Level, format: AppConfiguration.LogFormat = .text, traceIds: Bool = false) -> Logger {
    LoggingSystem.bootstrap(
        { label, metadataProvider in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label, metadataProvider: metadataProvider)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.metadataProvider = metadataProvider
                handler.logLevel = level
                return handler
            }
        }, metadataProvider: traceIds ? OTel.makeLoggingMetadataProvider() : nil)
    var logger = Logger(label: "fletcher")
    logger.logLevel = level
    return logger
}
