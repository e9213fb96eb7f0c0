package org.fhirgenomics.testserver;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport.IssueSeverity;
import ca.uhn.fhir.jpa.config.JpaConfig;
import org.hl7.fhir.common.hapi.validation.support.UnknownCodeSystemWarningValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * Terminology without a terminology server: codes are checked against what the server holds (FHIR
 * R4 core, the installed packages, HAPI's built-in code systems such as UCUM and BCP-47); a code
 * from a code system it does not hold (HGVS, LOINC, Sequence Ontology, HGNC, Ensembl, ClinVar...)
 * cannot be checked and is reported as a warning, not an error. No remote terminology service is
 * configured, so nothing is looked up over the network. This is the policy of the adapter's own
 * validator for the same code systems (profiles/packages.json, "not_pinned").
 * https://hapifhir.io/hapi-fhir/docs/validation/validation_support_modules.html
 */
@Configuration
public class OfflineTerminology {

	/** Last in the JPA validation chain, so it answers only for code systems nothing else knows. */
	@Bean
	public UnknownCodeSystemWarningValidationSupport unknownCodeSystemWarning(
			FhirContext fhirContext,
			@Qualifier(JpaConfig.JPA_VALIDATION_SUPPORT_CHAIN) ValidationSupportChain chain) {
		UnknownCodeSystemWarningValidationSupport support = new UnknownCodeSystemWarningValidationSupport(fhirContext);
		support.setNonExistentCodeSystemSeverity(IssueSeverity.WARNING);
		chain.addValidationSupport(support);
		return support;
	}
}
