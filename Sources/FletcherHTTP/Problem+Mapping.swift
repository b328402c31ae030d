import FletcherDomain
import FletcherStore
import Foundation
import HTTPTypes

extension Problem {
    /// The answer for any error raised while serving a request; nil for an error that is a bug (500).
    public init?(for error: any Error) {
        switch error {
        case let problem as Problem:
            self = problem
        case let error as PlanError:
            self.init(Self.status(of: error), error.description)
        case let error as StoreError:
            switch error {
            case .unavailable:
                self.init(.serviceUnavailable, "The database is unavailable; retry later", headers: [.retryAfter: "1"])
            case .invalidConfiguration, .corrupt:
                return nil
            }
        case let error as DecodingError:
            self = .badRequest(Self.describe(error))
        default:
            return nil
        }
    }

    private static func status(of error: PlanError) -> HTTPResponse.Status {
        switch error {
        case .duplicateDataProduct, .duplicateDependency, .unreportableState, .alreadyPaused, .notPaused, .invalidLimit: .badRequest
        case .unknownDependencyEndpoint, .datasetNotFound, .dataProductNotFound: .notFound
        case .dataProductDisabled: .forbidden
        case .cycle: .unprocessableContent
        case .staleReport, .notFailed, .retryWhilePaused: .conflict
        }
    }

    /// "Invalid request body: at data_products[0].compute: …", naming the field at fault.
    package static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            var text = ""
            for key in codingPath {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : "." + key.stringValue
                }
            }
            return text.isEmpty ? "the top level" : text
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = context.codingPath.isEmpty ? "" : " in \(path(context.codingPath))"
            return "Missing field '\(key.stringValue)'\(parent)"
        case .typeMismatch(let type, let context):
            return "Wrong type at \(path(context.codingPath)): expected \(describe(type))"
        case .valueNotFound(let type, let context):
            return "Missing value at \(path(context.codingPath)): expected \(describe(type))"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                return "Invalid request: \(context.debugDescription)"
            }
            return "Invalid value at \(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "Invalid request body"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Int64.Type, is Int32.Type: "an integer"
        case is Double.Type: "a number"
        case is [Any].Type: "an array"
        default: "\(type)".contains("Array") ? "an array" : "an object"
        }
    }
}
