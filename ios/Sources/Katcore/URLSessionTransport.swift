// The HTTP transport katcore's sync uses on iOS: URLSession, so requests get
// the system's TLS, trust store (including profiles installed by a managed
// device), proxy and VPN settings, and App Transport Security.
import Foundation

/// Sends katcore's sync requests with a `URLSession`. Pass one to `CareStore.open(at:key:transport:)`.
///
/// Redirects are not followed and nothing is cached. Errors name the kind of failure only,
/// never the URL, the headers (the device token) or the body (health data).
public final class URLSessionTransport: HttpTransport, @unchecked Sendable {
    private let session: URLSession

    /// - Parameters:
    ///   - configuration: the session's configuration; by default ephemeral (no cookies, no
    ///     cache), a 10 s request timeout and a 60 s resource timeout.
    ///   - trust: for a clinic server behind a private CA: decides server trust challenges.
    ///     By default the system's trust evaluation decides.
    public init(
        configuration: URLSessionConfiguration = URLSessionTransport.defaultConfiguration(),
        trust: ((URLAuthenticationChallenge) -> (URLSession.AuthChallengeDisposition, URLCredential?))? = nil
    ) {
        // The session keeps its delegate until it is invalidated.
        session = URLSession(configuration: configuration, delegate: RefuseRedirects(trust: trust), delegateQueue: nil)
    }

    deinit {
        // A URLSession holds its delegate until invalidated: let running requests finish, then free both.
        session.finishTasksAndInvalidate()
    }

    /// Ephemeral, uncached, with katcore's timeouts.
    public static func defaultConfiguration() -> URLSessionConfiguration {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 10
        configuration.timeoutIntervalForResource = 60
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        return configuration
    }

    public func send(request: HttpRequest) async throws -> HttpResponse {
        guard let url = URL(string: request.url) else {
            throw HttpTransportError.Unreachable(reason: "not a URL")
        }
        var urlRequest = URLRequest(url: url)
        urlRequest.httpMethod = request.method
        for (name, value) in request.headers {
            urlRequest.setValue(value, forHTTPHeaderField: name)
        }
        if request.method == "POST" {
            urlRequest.httpBody = request.body
        }
        do {
            let (body, response) = try await session.data(for: urlRequest)
            guard let http = response as? HTTPURLResponse else {
                throw HttpTransportError.Unreachable(reason: "not an HTTP response")
            }
            var headers: [String: String] = [:]
            for (name, value) in http.allHeaderFields {
                if let name = name as? String { headers[name] = "\(value)" }
            }
            return HttpResponse(status: UInt16(clamping: http.statusCode), headers: headers, body: body)
        } catch let error as HttpTransportError {
            throw error
        } catch let error as URLError {
            // The code (for example notConnectedToInternet, timedOut, serverCertificateUntrusted) only.
            throw HttpTransportError.Unreachable(reason: "URLError \(error.code.rawValue)")
        } catch {
            throw HttpTransportError.Unreachable(reason: String(describing: type(of: error)))
        }
    }
}

/// Refuses redirects (sync never expects one) and hands trust challenges to the app's closure.
private final class RefuseRedirects: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    private let trust: ((URLAuthenticationChallenge) -> (URLSession.AuthChallengeDisposition, URLCredential?))?

    init(trust: ((URLAuthenticationChallenge) -> (URLSession.AuthChallengeDisposition, URLCredential?))?) {
        self.trust = trust
    }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
        completionHandler: @escaping (URLSession.AuthChallengeDisposition, URLCredential?) -> Void
    ) {
        guard let trust, challenge.protectionSpace.authenticationMethod == NSURLAuthenticationMethodServerTrust else {
            return completionHandler(.performDefaultHandling, nil)
        }
        let (disposition, credential) = trust(challenge)
        completionHandler(disposition, credential)
    }
}
