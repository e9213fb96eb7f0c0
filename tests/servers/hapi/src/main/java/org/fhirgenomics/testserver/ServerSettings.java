package org.fhirgenomics.testserver;

import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.subscription.match.deliver.email.IEmailSender;
import org.hl7.fhir.dstu2.model.Subscription.SubscriptionChannelType;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * The behaviour the adapter's tests rely on, stated explicitly even where it is HAPI's default.
 *
 * <p>Storage: https://hapifhir.io/hapi-fhir/docs/server_jpa/configuration.html ; subscriptions:
 * https://hl7.org/fhir/R4/subscription.html
 */
@Configuration
public class ServerSettings {

	@Bean
	public JpaStorageSettings storageSettings() {
		JpaStorageSettings settings = new JpaStorageSettings();
		// A reference to a resource that does not exist is refused, never turned into a placeholder.
		settings.setEnforceReferentialIntegrityOnWrite(true);
		settings.setEnforceReferentialIntegrityOnDelete(true);
		settings.setAutoCreatePlaceholderReferenceTargets(false);
		// "Patient?identifier=..." references in a transaction are resolved to the one match.
		settings.setAllowInlineMatchUrlReferences(true);
		// Every search is run afresh, so a test that counts after a write sees that write.
		settings.setReuseCachedSearchResultsForMillis(null);
		// Pre-expanding stored ValueSets needs the full-text index, which is off (DatabaseConfig);
		// the validator expands the IG's small ValueSets in memory instead.
		settings.setPreExpandValueSets(false);
		return settings;
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	@Bean
	public SubscriptionSettings subscriptionSettings() {
		SubscriptionSettings settings = new SubscriptionSettings();
		// HAPI takes the DSTU2 enum here whatever the FHIR version.
		settings.addSupportedSubscriptionType(SubscriptionChannelType.RESTHOOK);
		return settings;
	}

	/** Only rest-hook channels are enabled, so an e-mail delivery can never be requested. */
	@Bean
	public IEmailSender emailSender() {
		return details -> {
			throw new UnsupportedOperationException("e-mail subscriptions are not enabled on this server");
		};
	}
}
