import ArgumentParser
import FletcherApp
import FletcherMemory
import Foundation
import Hummingbird
import Logging

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server (the default).")

    func run() async throws {
        MemoryReturn.configure(environment: ProcessInfo.processInfo.environment)
        let configuration = try loadConfiguration()
        let logger = bootstrapLogging(level: configuration.logLevel, format: configuration.logFormat)
        let (application, credentials) = try await buildApplication(configuration: configuration, logger: logger)
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

func bootstrapLogging(level: Logger.Level, format: AppConfiguration.LogFormat = .text) -> Logger {
    LoggingSystem.bootstrap { label in
        switch format {
        case .text:
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        case .json:
            var handler = JSONLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
    }
    var logger = Logger(label: "fletcher")
    logger.logLevel = level
    return logger
}
