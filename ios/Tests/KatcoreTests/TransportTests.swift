// URLSessionTransport on its own, against the clinic servers
// scripts/swift-test.sh starts on loopback (one over HTTP, one over TLS with
// a certificate no trust store knows): every HTTP answer is returned, error
// statuses included; only a missing answer is Unreachable, naming no address.
import Foundation
import Katcore
import Testing

@Suite("URLSessionTransport")
struct TransportTests {
    let transport = URLSessionTransport()

    private func get(_ url: String, headers: [String: String] = [:]) -> HttpRequest {
        HttpRequest(method: "GET", url: url, headers: headers, body: Data())
    }

    /// The failure's reason, failing the test unless it is `Unreachable`.
    private func unreachable(_ request: HttpRequest) async -> String? {
        do {
            let response = try await transport.send(request: request)
            Issue.record("expected Unreachable, got HTTP \(response.status)")
        } catch HttpTransportError.Unreachable(let reason) {
            return reason
        } catch {
            Issue.record("expected Unreachable, got \(error)")
        }
        return nil
    }

    @Test(.enabled(if: Clinic.fromEnvironment != nil, "needs the clinic server scripts/swift-test.sh starts"))
    func aGetAndAPostReturnTheAnswerWhateverItsStatus() async throws {
        let clinic = try #require(Clinic.fromEnvironment)
        let health = try await transport.send(request: get(clinic.url + "/healthz"))
        #expect(health.status == 200)
        let body = try #require(try JSONSerialization.jsonObject(with: health.body) as? [String: String])
        #expect(body["status"] == "ok")
        #expect(health.headers.contains { $0.key.lowercased() == "content-type" && $0.value.hasPrefix("application/json") })

        // An unknown device token: the 401 is an answer that stops sync, not a network failure.
        let refused = try await transport.send(request: HttpRequest(
            method: "POST", url: clinic.url + "/v1/sync",
            headers: ["Authorization": "Bearer kd_not_a_token", "Content-Type": "application/octet-stream"],
            body: Data([1, 2, 3])))
        #expect(refused.status == 401)
        #expect(!refused.body.isEmpty)
    }

    @Test func noAnswerIsUnreachableAndNamesNoAddress() async throws {
        let reason = try #require(await unreachable(get("http://127.0.0.1:9/v1/pack")))
        #expect(!reason.contains("127.0.0.1"))
        #expect(reason.hasPrefix("URLError"))
        #expect(await unreachable(get("not a url")) != nil)
        #expect(await unreachable(get("ftp://127.0.0.1/v1/pack")) == "not an http(s) URL")
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["KATCORE_UNTRUSTED_TLS_URL"] != nil, "needs the TLS server scripts/swift-test.sh starts"))
    func aServerWhoseCertificateNobodyTrustsIsUnreachable() async throws {
        let url = try #require(ProcessInfo.processInfo.environment["KATCORE_UNTRUSTED_TLS_URL"])
        #expect(url.hasPrefix("https://"))
        let reason = try #require(await unreachable(get(url + "/healthz")))
        #expect(!reason.contains("127.0.0.1"))
        #expect(reason.hasPrefix("URLError"))
    }
}
