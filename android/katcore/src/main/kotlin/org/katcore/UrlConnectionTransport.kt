// The HTTP transport katcore's sync uses on Android (and on any JVM):
// java.net.HttpURLConnection, which on Android is the platform's own stack
// (Conscrypt TLS, the device's trust store including user and managed CAs,
// its proxy and VPN settings). scripts/kotlin-test.sh compiles this file with
// the generated bindings and syncs through it against a clinic on loopback.
package org.katcore

import java.io.IOException
import java.net.HttpURLConnection
import java.net.URI
import javax.net.ssl.HttpsURLConnection
import javax.net.ssl.SSLSocketFactory
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

/**
 * Sends katcore's sync requests with [HttpURLConnection] on [Dispatchers.IO].
 *
 * Pass one to [CareStore.open]. Redirects are not followed, nothing is cached, and
 * connections are kept alive between the requests of one sync.
 * Errors name the kind of failure only, never the URL, the headers (the device
 * token) or the body (health data).
 *
 * @param connectTimeoutMillis how long to wait for a connection.
 * @param readTimeoutMillis how long to wait for data once connected.
 * @param sslSocketFactory for a clinic server behind a private CA: a factory from an
 *   `SSLContext` that trusts it. By default the platform's trust store decides
 *   (on Android, also per the app's network security config).
 */
class UrlConnectionTransport(
    private val connectTimeoutMillis: Int = 10_000,
    private val readTimeoutMillis: Int = 60_000,
    private val sslSocketFactory: SSLSocketFactory? = null,
) : HttpTransport {
    override suspend fun send(request: HttpRequest): HttpResponse = withContext(Dispatchers.IO) {
        val connection = try {
            URI(request.url).toURL().openConnection() as HttpURLConnection
        } catch (e: Exception) {
            throw HttpTransportException.Unreachable("not an http(s) URL (${e.javaClass.simpleName})")
        }
        try {
            connection.requestMethod = request.method
            connection.connectTimeout = connectTimeoutMillis
            connection.readTimeout = readTimeoutMillis
            connection.instanceFollowRedirects = false
            connection.useCaches = false
            if (connection is HttpsURLConnection && sslSocketFactory != null) {
                connection.sslSocketFactory = sslSocketFactory
            }
            for ((name, value) in request.headers) connection.setRequestProperty(name, value)
            if (request.method == "POST") {
                connection.doOutput = true
                connection.setFixedLengthStreamingMode(request.body.size)
                connection.outputStream.use { it.write(request.body) }
            }
            val status = connection.responseCode
            if (status < 0) {
                connection.disconnect()
                throw HttpTransportException.Unreachable("not an HTTP response")
            }
            // Error statuses have their body on the error stream (or none at all).
            val stream = if (status >= 400) connection.errorStream else connection.inputStream
            val body = stream?.use { it.readBytes() } ?: ByteArray(0)
            // The status line comes back under a null name: leave it out.
            val headers = buildMap {
                for ((name, values) in connection.headerFields) if (name != null) put(name, values.joinToString(", "))
            }
            HttpResponse(status.toUShort(), headers, body)
        } catch (e: IOException) {
            // The exception's own message may contain the host or URL: only its kind goes out.
            connection.disconnect()
            throw HttpTransportException.Unreachable(e.javaClass.simpleName)
        }
        // On success the body was read to its end and closed, which returns the connection to
        // the platform's keep-alive pool for the next request of the sync.
    }
}
