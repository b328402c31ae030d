import Foundation

/// The stylesheet, script and icon of the pages, read once at start-up (failing fast if one is
/// missing) and served under `/assets/` with a content fingerprint, so browsers may cache them for good.
public struct Assets: Sendable {
    struct File: Sendable {
        var bytes: [UInt8]
        var contentType: String
        var fingerprint: String
    }

    let files: [String: File]

    public init() throws {
        var files: [String: File] = [:]
        for (name, contentType) in [
            ("fletcher.css", "text/css; charset=utf-8"), ("fletcher.js", "text/javascript; charset=utf-8"),
            ("favicon.svg", "image/svg+xml"),
        ] {
            guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Assets"),
                let data = try? Data(contentsOf: url)
            else { throw AssetError.missing(name) }
            files[name] = File(bytes: Array(data), contentType: contentType, fingerprint: Self.fingerprint(data))
        }
        self.files = files
    }

    /// FNV-1a over the bytes: changes whenever the file does, which is all a cache key needs.
    static func fingerprint(_ data: Data) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in data {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }

    /// The versioned URL of an asset.
    func url(_ name: String) -> String {
        "/assets/\(name)?v=\(files[name]?.fingerprint ?? "0")"
    }

    enum AssetError: Error, CustomStringConvertible {
        case missing(String)
        var description: String {
            switch self {
            case .missing(let name): "web asset \(name) is missing from the FletcherWeb bundle"
            }
        }
    }
}
