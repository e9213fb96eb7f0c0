package org.fhirgenomics.testserver;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** The FHIR servlet at {@code /fhir/*}, behind the gate that holds requests until the server is ready. */
@Configuration
public class WebConfig {

	static final String BASE_PATH = "/fhir/*";

	@Bean
	public ServletRegistrationBean<FhirServlet> fhirServlet(
			FhirContext fhirContext,
			@Qualifier("myResourceProvidersR4") ResourceProviderFactory resourceProviders,
			JpaSystemProvider<?, ?> systemProvider,
			DatabaseBackedPagingProvider pagingProvider,
			IFhirSystemDao<?, ?> systemDao,
			JpaStorageSettings storageSettings,
			ISearchParamRegistry searchParamRegistry,
			IValidationSupport validationSupport) {
		FhirServlet servlet = new FhirServlet(
				fhirContext,
				resourceProviders,
				systemProvider,
				pagingProvider,
				systemDao,
				storageSettings,
				searchParamRegistry,
				validationSupport);
		ServletRegistrationBean<FhirServlet> registration = new ServletRegistrationBean<>(servlet, BASE_PATH);
		registration.setLoadOnStartup(1);
		return registration;
	}

	@Bean
	public ReadinessGate readinessGate() {
		return new ReadinessGate();
	}

	@Bean
	public FilterRegistrationBean<ReadinessGate> readinessGateRegistration(ReadinessGate gate) {
		FilterRegistrationBean<ReadinessGate> registration = new FilterRegistrationBean<>(gate);
		registration.addUrlPatterns(BASE_PATH);
		return registration;
	}
}
