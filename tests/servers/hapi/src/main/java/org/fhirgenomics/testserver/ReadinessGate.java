package org.fhirgenomics.testserver;

import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import org.springframework.web.filter.OncePerRequestFilter;

/**
 * Answers 503 until {@link #open()}: the port is bound before the FHIR packages are installed,
 * and a client that sees {@code /fhir/metadata} answer must be able to validate against them.
 */
public class ReadinessGate extends OncePerRequestFilter {

	private volatile boolean open;

	/** Let requests through from now on. */
	public void open() {
		open = true;
	}

	@Override
	protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
			throws ServletException, IOException {
		if (open) {
			chain.doFilter(request, response);
			return;
		}
		response.setHeader("Retry-After", "1");
		response.sendError(HttpServletResponse.SC_SERVICE_UNAVAILABLE, "the FHIR packages are still being installed");
	}
}
