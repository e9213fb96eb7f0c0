package org.fhirgenomics.testserver;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.jpa.subscription.match.config.SubscriptionProcessorConfig;
import ca.uhn.fhir.jpa.subscription.submit.config.SubscriptionSubmitterConfig;
import ca.uhn.fhir.jpa.topic.SubscriptionTopicConfig;
import java.util.Map;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.ImportAutoConfiguration;
import org.springframework.boot.autoconfigure.web.servlet.ServletWebServerFactoryAutoConfiguration;
import org.springframework.context.annotation.Import;

/**
 * A HAPI FHIR JPA server (FHIR R4 only) for the adapter's integration tests.
 *
 * <p>Spring Boot auto-configuration is off except for the embedded servlet container, so that
 * nothing but HAPI's own configuration classes decides how the JPA server is wired (and start-up
 * stays short). Properties, given as {@code --name=value} arguments or {@code -Dname=value}:
 *
 * <ul>
 *   <li>{@code server.port} (default 8080) and {@code server.address} (default 127.0.0.1);
 *   <li>{@code hapi.db.path}: an H2 file database at that path (kept across restarts); unset, an
 *       in-memory database;
 *   <li>{@code hapi.packages}: comma-separated FHIR npm package tarballs installed at start-up,
 *       without fetching their dependencies (see {@link PackageInstaller}).
 * </ul>
 *
 * <p>The FHIR base is {@code /fhir}. Docs: https://hapifhir.io/hapi-fhir/docs/server_jpa/introduction.html
 */
@SpringBootConfiguration
@ImportAutoConfiguration(ServletWebServerFactoryAutoConfiguration.class)
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	ThreadPoolFactoryConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	SubscriptionSubmitterConfig.class,
	SubscriptionProcessorConfig.class,
	SubscriptionChannelConfig.class,
	SubscriptionTopicConfig.class,
	ServerSettings.class,
	DatabaseConfig.class,
	OfflineTerminology.class,
	WebConfig.class,
	PackageInstaller.class
})
public class HapiTestServer {

	public static void main(String[] args) {
		SpringApplication application = new SpringApplication(HapiTestServer.class);
		application.setDefaultProperties(Map.of("server.address", "127.0.0.1"));
		application.run(args);
	}
}
