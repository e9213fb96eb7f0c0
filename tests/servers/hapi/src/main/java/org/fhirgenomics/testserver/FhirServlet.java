package org.fhirgenomics.testserver;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;

/**
 * The FHIR REST endpoint: HAPI's generated JPA resource providers (CRUD, search with
 * {@code _include}, conditional create/update, {@code $validate}), the system provider
 * (transaction and batch Bundles) and a CapabilityStatement built from what is registered.
 * https://hapifhir.io/hapi-fhir/docs/server_plain/introduction.html
 */
public class FhirServlet extends RestfulServer {

	private final transient ResourceProviderFactory resourceProviders;
	private final transient JpaSystemProvider<?, ?> systemProvider;
	private final transient DatabaseBackedPagingProvider pagingProvider;
	private final transient IFhirSystemDao<?, ?> systemDao;
	private final transient JpaStorageSettings storageSettings;
	private final transient ISearchParamRegistry searchParamRegistry;
	private final transient IValidationSupport validationSupport;

	public FhirServlet(
			FhirContext fhirContext,
			ResourceProviderFactory resourceProviders,
			JpaSystemProvider<?, ?> systemProvider,
			DatabaseBackedPagingProvider pagingProvider,
			IFhirSystemDao<?, ?> systemDao,
			JpaStorageSettings storageSettings,
			ISearchParamRegistry searchParamRegistry,
			IValidationSupport validationSupport) {
		super(fhirContext);
		this.resourceProviders = resourceProviders;
		this.systemProvider = systemProvider;
		this.pagingProvider = pagingProvider;
		this.systemDao = systemDao;
		this.storageSettings = storageSettings;
		this.searchParamRegistry = searchParamRegistry;
		this.validationSupport = validationSupport;
	}

	@Override
	protected void initialize() {
		registerProviders(resourceProviders.createProviders());
		registerProvider(systemProvider);
		setPagingProvider(pagingProvider);
		setServerConformanceProvider(new JpaCapabilityStatementProvider(
				this, systemDao, storageSettings, searchParamRegistry, validationSupport));
		setDefaultResponseEncoding(EncodingEnum.JSON);
	}
}
