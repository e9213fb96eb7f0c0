package org.fhirgenomics.testserver;

import ca.uhn.fhir.jpa.packages.IPackageInstallerSvc;
import ca.uhn.fhir.jpa.packages.PackageInstallOutcomeJson;
import ca.uhn.fhir.jpa.packages.PackageInstallationSpec;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.hl7.fhir.utilities.npm.NpmPackage;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.context.event.EventListener;
import org.springframework.core.env.Environment;

/**
 * Installs the FHIR npm packages named by {@code hapi.packages} (local .tgz files), then opens
 * the {@link ReadinessGate}.
 *
 * <p>Each package is given to HAPI by its contents, with dependency fetching off and HAPI's own
 * package servers never asked: the server needs no network. Its conformance resources
 * (StructureDefinition, ValueSet, CodeSystem, SearchParameter...) are stored as resources
 * (STORE_AND_INSTALL), so {@code $validate?profile=...} finds the profiles. FHIR R4 core itself
 * needs no package: HAPI ships it (hapi-fhir-validation-resources-r4).
 * https://hapifhir.io/hapi-fhir/docs/server_jpa/packages.html
 */
public class PackageInstaller {

	static final String PACKAGES = "hapi.packages";
	private static final Logger LOG = LoggerFactory.getLogger(PackageInstaller.class);

	private final IPackageInstallerSvc installer;
	private final ReadinessGate gate;
	private final List<Path> tarballs;

	public PackageInstaller(IPackageInstallerSvc installer, ReadinessGate gate, Environment environment) {
		this.installer = installer;
		this.gate = gate;
		this.tarballs = Arrays.stream(environment.getProperty(PACKAGES, "").split(","))
				.map(String::strip)
				.filter(name -> !name.isEmpty())
				.map(Path::of)
				.toList();
	}

	/** After start-up, when HAPI's search parameter and subscription registries are live. */
	@EventListener(ApplicationReadyEvent.class)
	public void installAll() {
		tarballs.forEach(this::install);
		gate.open();
		LOG.info("FHIR server ready: {} package(s) installed", tarballs.size());
	}

	private void install(Path tarball) {
		byte[] contents = read(tarball);
		NpmPackage npm = parse(tarball, contents);
		PackageInstallationSpec spec = new PackageInstallationSpec()
				.setName(npm.name())
				.setVersion(npm.version())
				.setPackageContents(contents)
				.setInstallMode(PackageInstallationSpec.InstallModeEnum.STORE_AND_INSTALL)
				.setFetchDependencies(false);
		PackageInstallOutcomeJson outcome = installer.install(spec);
		LOG.info("Installed {}#{} from {}: {} {}", npm.name(), npm.version(), tarball,
				outcome.getResourcesInstalled(), outcome.getMessage());
	}

	private static byte[] read(Path tarball) {
		try {
			return Files.readAllBytes(tarball);
		} catch (IOException e) {
			throw new UncheckedIOException("cannot read the FHIR package " + tarball + " named by " + PACKAGES, e);
		}
	}

	private static NpmPackage parse(Path tarball, byte[] contents) {
		try {
			return NpmPackage.fromPackage(new ByteArrayInputStream(contents));
		} catch (IOException e) {
			throw new UncheckedIOException(tarball + " is not a FHIR npm package (.tgz)", e);
		}
	}
}
