// The HTTP transport katcore's sync uses on iOS: URLSession, so requests get
// the system's TLS, trust store (including profiles installed by a managed
// device), proxy and VPN settings, and App Transport Security. On Linux the
// same code runs on swift-corelibs-foundation's URLSession (libcurl), which is
// how scripts/swift-test.sh tests it against a real clinic server.
import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Decides a server-trust challenge, for a clinic server behind a private CA.
///
/// Called on Apple platforms only: swift-corelibs-foundation (Linux) verifies
/// TLS with libcurl against the system's CA bundle and never asks.
public typealias ServerTrustDecision =
    @Sendable (URLAuthenticationChallenge) -> (URLSession.AuthChallengeDisposition, URLCredential?)

/// Sends katcore's sync requests with a `URLSession`. Pass one to `CareStore.open(at:key:transport:)`.
///
/// Every HTTP answer is returned, error statuses included (a 401 stops sync; it is not a
/// network failure). Redirects are not followed: a 3xx is returned as the answer, which
/// sync treats as a server error, as with Android's transport. Nothing is cached. Errors name the kind
/// of failure only, never the URL, the headers (the device token) or the body (health data).
/// Safe to share between tasks: it holds only immutable state and its `URLSession`.
public final class URLSessionTransport: HttpTransport {
    private let session: URLSession

    /// - Parameters:
    ///   - configuration: the session's configuration; by default ephemeral (no cookies, no
    ///     cache), a 10 s request timeout and a 60 s resource timeout.
    ///   - trust: for a clinic server behind a private CA: decides server-trust challenges
    ///     (Apple platforms). By default the system's trust evaluation decides.
    public init(
        configuration: URLSessionConfiguration = URLSessionTransport.defaultConfiguration(),
        trust: ServerTrustDecision? = nil
    ) {
        // The session keeps its delegate until it is invalidated (in deinit).
        session = URLSession(configuration: configuration, delegate: TransportDelegate(trust: trust), delegateQueue: nil)
    }

    deinit {
        // Let running requests finish, then free the session and its delegate.
        session.finishTasksAndInvalidate()
    }

    /// Ephemeral, uncached, with katcore's timeouts.
    public static func defaultConfiguration() -> URLSessionConfiguration {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 10
        configuration.timeoutIntervalForResource = 60
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        configuration.httpCookieStorage = nil
        return configuration
    }

    /// Sends `request` and returns the answer, whatever its status.
    ///
    /// - Throws: `HttpTransportError.Unreachable` when no answer arrived, with a reason that
    ///   names the kind of failure (`URLError` code) and nothing else.
    public func send(request: HttpRequest) async throws -> HttpResponse {
        guard let url = URL(string: request.url), url.scheme == "https" || url.scheme == "http" else {
            throw HttpTransportError.Unreachable(reason: "not an http(s) URL")
        }
        var urlRequest = URLRequest(url: url)
        urlRequest.httpMethod = request.method
        for (name, value) in request.headers {
            urlRequest.setValue(value, forHTTPHeaderField: name)
        }
        if request.method != "GET" && request.method != "HEAD" {
            urlRequest.httpBody = request.body
        }
        let body: Data
        let response: URLResponse
        do {
            (body, response) = try await session.data(for: urlRequest)
        } catch let error as URLError {
            // The code only (for example notConnectedToInternet, timedOut, serverCertificateUntrusted).
            throw HttpTransportError.Unreachable(reason: "URLError \(error.code.rawValue)")
        } catch {
            throw HttpTransportError.Unreachable(reason: String(describing: type(of: error)))
        }
        guard let http = response as? HTTPURLResponse else {
            throw HttpTransportError.Unreachable(reason: "not an HTTP response")
        }
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String { headers[name] = "\(value)" }
        }
        return HttpResponse(status: UInt16(clamping: http.statusCode), headers: headers, body: body)
    }
}

/// Refuses redirects and hands server-trust challenges to the app's closure.
private final class TransportDelegate: NSObject, URLSessionTaskDelegate, Sendable {
    private let trust: ServerTrustDecision?

    init(trust: ServerTrustDecision?) {
        self.trust = trust
    }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
        completionHandler: @escaping @Sendable (URLSession.AuthChallengeDisposition, URLCredential?) -> Void
    ) {
        #if canImport(Security)
        if let trust, challenge.protectionSpace.authenticationMethod == NSURLAuthenticationMethodServerTrust {
            let (disposition, credential) = trust(challenge)
            return completionHandler(disposition, credential)
        }
        #endif
        completionHandler(.performDefaultHandling, nil)
    }
}
