package org.fhirgenomics.tests.validator;

import java.io.BufferedReader;
import java.io.File;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import org.hl7.fhir.r5.context.SimpleWorkerContext;
import org.hl7.fhir.r5.elementmodel.Manager.FhirFormat;
import org.hl7.fhir.r5.utils.validation.constants.BestPracticeWarningLevel;
import org.hl7.fhir.r5.utils.validation.constants.ReferenceValidationPolicy;
import org.hl7.fhir.utilities.FhirPublication;
import org.hl7.fhir.utilities.VersionUtil;
import org.hl7.fhir.utilities.http.ManagedWebAccess;
import org.hl7.fhir.utilities.json.model.JsonArray;
import org.hl7.fhir.utilities.json.model.JsonObject;
import org.hl7.fhir.utilities.json.parser.JsonParser;
import org.hl7.fhir.utilities.npm.FilesystemPackageCacheManager;
import org.hl7.fhir.utilities.npm.NpmPackage;
import org.hl7.fhir.utilities.validation.ValidationMessage;
import org.hl7.fhir.validation.ValidationEngine;
import org.hl7.fhir.validation.ValidatorUtils;
import org.hl7.fhir.validation.instance.advisor.BasePolicyAdvisorForFullValidation;
import org.hl7.fhir.validation.service.StandAloneValidatorFetcher;
import org.hl7.fhir.validation.service.model.HtmlInMarkdownCheck;
import org.hl7.fhir.validation.service.utils.QuestionnaireMode;

/**
 * The official FHIR validator as one warm, offline process speaking JSON lines.
 *
 * <p>Start-up mirrors {@code java -jar validator_cli.jar -version 4.0.1 -tx n/a -ig ...}
 * (ValidationService.buildValidationEngine in org.hl7.fhir.validation 6.6.7) with two
 * differences, both for working offline: packages come only from the tarballs named on the
 * command line, installed into a private package cache; and the IG packages are loaded
 * without following their declared dependencies, because the exact dependency versions the
 * Genomics Reporting IG names are not published where this project may fetch from (the ones
 * that are get named with {@code --load} instead).
 *
 * <p>Arguments: {@code --home DIR} (private home: package cache and fhir-settings.json),
 * {@code --package ID#VERSION=TGZ} (installed, repeatable), {@code --core ID#VERSION}
 * (definitions the engine starts from), {@code --load ID#VERSION} (loaded in order, repeatable).
 *
 * <p>Protocol: one line of JSON on stdout when ready ({@code {"ready":true,...}}), then for
 * every line on stdin, one line on stdout. A request is a resource itself, or
 * {@code {"id":..,"path":..}} / {@code {"id":..,"resource":{..}}}, each with optional
 * {@code "profiles":[..]}. The answer is {@code {"id":..,"us":..,"issues":[{"severity",
 * "location","line","col","type","messageId","message"}]}} or {@code {"id":..,"error":..}}.
 * Everything the library prints goes to stderr.
 */
public final class WarmValidator {

  private final ValidationEngine engine;
  private final PrintStream protocol;

  private WarmValidator(ValidationEngine engine, PrintStream protocol) {
    this.engine = engine;
    this.protocol = protocol;
  }

  public static void main(String[] args) throws Exception {
    PrintStream protocol = new PrintStream(new FileOutputStream(FileDescriptor.out), true, "UTF-8");
    System.setOut(System.err); // the library's own prints must not corrupt the protocol
    long start = System.nanoTime();
    Options options = Options.parse(args);
    offline(options.home);
    install(options);
    ValidationEngine engine = start(options);
    JsonObject ready = new JsonObject()
        .add("ready", true)
        .add("validator", VersionUtil.getVersion())
        .add("fhirVersion", engine.getVersion())
        .add("packages", engine.getContext().getLoadedPackages())
        .add("loadMs", (System.nanoTime() - start) / 1_000_000);
    protocol.println(JsonParser.compose(ready, false));
    BufferedReader requests = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    new WarmValidator(engine, protocol).serve(requests);
  }

  /** Point the library's home at a private folder and forbid all network access. */
  private static void offline(Path home) throws IOException {
    Path fhir = Files.createDirectories(home.resolve(".fhir"));
    Files.createDirectories(fhir.resolve("packages"));
    Files.writeString(fhir.resolve("fhir-settings.json"),
        "{\"prohibitNetworkAccess\": true, \"ignoreDefaultPackageServers\": true, \"servers\": []}\n");
    System.setProperty("user.home", home.toString());
    ManagedWebAccess.setAccessPolicy(ManagedWebAccess.WebAccessPolicy.PROHIBITED);
  }

  /** Install every named tarball into the private cache, unless it is there already. */
  private static void install(Options options) throws IOException {
    FilesystemPackageCacheManager pcm = new FilesystemPackageCacheManager.Builder()
        .withCacheFolder(options.home.resolve(".fhir").resolve("packages").toString())
        .withPackageServers(new ArrayList<>())
        .build();
    for (Map.Entry<String, Path> pkg : options.tarballs.entrySet()) {
      String[] idVersion = pkg.getKey().split("#", 2);
      if (!pcm.packageInstalled(idVersion[0], idVersion[1])) {
        try (InputStream tgz = Files.newInputStream(pkg.getValue())) {
          pcm.addPackageToCache(idVersion[0], idVersion[1], tgz, pkg.getValue().toString());
        }
      }
    }
  }

  /** The engine as the CLI builds it with -tx n/a, over the local packages only. */
  private static ValidationEngine start(Options options) throws Exception {
    ValidationEngine engine = new ValidationEngine.ValidationEngineBuilder()
        .withVersion(options.fhirVersion())
        .withUserAgent("fhir-genomics-adapter-tests")
        .withNoTerminologyServer()
        .fromSource(options.core);
    engine.setTerminologyServer(null, null, FhirPublication.fromCode(options.fhirVersion()), false);
    SimpleWorkerContext context = engine.getContext();
    for (String id : options.loads) {
      String[] idVersion = id.split("#", 2);
      NpmPackage npm = engine.getPcm().loadPackage(idVersion[0], idVersion[1]);
      int count = context.loadFromPackage(npm, ValidatorUtils.loaderForVersion(npm.fhirVersion()));
      System.err.println("  Load " + id + " - " + count + " resources");
    }
    // the CLI's defaults (ValidationContext in 6.6.7) where the engine's own differ
    engine.setBestPracticeLevel(BestPracticeWarningLevel.Warning);
    engine.setHtmlInMarkdownCheck(HtmlInMarkdownCheck.WARNING);
    engine.setQuestionnaireMode(QuestionnaireMode.CHECK);
    engine.setLocale(Locale.ENGLISH);
    StandAloneValidatorFetcher fetcher = new StandAloneValidatorFetcher(engine.getPcm(), context, engine);
    fetcher.setReferencePolicy(ReferenceValidationPolicy.IGNORE);
    engine.setFetcher(fetcher);
    context.setLocator(fetcher);
    engine.setPolicyAdvisor(fetcher);
    engine.getPolicyAdvisor().setPolicyAdvisor(
        new BasePolicyAdvisorForFullValidation(engine.getPolicyAdvisor().getReferencePolicy()));
    engine.prepare();
    return engine;
  }

  private void serve(BufferedReader in) throws IOException {
    for (String line = in.readLine(); line != null; line = in.readLine()) {
      if (!line.isBlank()) {
        protocol.println(JsonParser.compose(answer(line), false));
      }
    }
  }

  /** One request line in, one answer out; a failure is reported, never fatal. */
  private JsonObject answer(String line) {
    JsonObject reply = new JsonObject();
    try {
      JsonObject request = JsonParser.parseObject(line);
      if (request.has("id")) {
        reply.add("id", request.get("id"));
      }
      long start = System.nanoTime();
      List<ValidationMessage> messages = new ArrayList<>();
      List<String> profiles = request.has("profiles") ? request.getStrings("profiles") : List.of();
      engine.validate(content(request, line), FhirFormat.JSON, profiles, messages);
      reply.add("us", (System.nanoTime() - start) / 1_000);
      reply.add("issues", issues(messages));
    } catch (Exception e) {
      reply.add("error", e.getClass().getSimpleName() + ": " + e.getMessage());
    }
    return reply;
  }

  private static byte[] content(JsonObject request, String line) throws IOException {
    if (request.has("resourceType")) {
      return line.getBytes(StandardCharsets.UTF_8);
    }
    if (request.has("path")) {
      return Files.readAllBytes(Path.of(request.asString("path")));
    }
    if (request.has("resource")) {
      return JsonParser.compose(request.getJsonObject("resource"), false).getBytes(StandardCharsets.UTF_8);
    }
    throw new IllegalArgumentException("a request is a resource, or has \"path\" or \"resource\"");
  }

  private static JsonArray issues(List<ValidationMessage> messages) {
    JsonArray issues = new JsonArray();
    for (ValidationMessage m : messages) {
      issues.add(new JsonObject()
          .add("severity", m.getLevel().toCode())
          .add("location", m.getLocation())
          .add("line", m.getLine())
          .add("col", m.getCol())
          .add("type", m.getType() == null ? "" : m.getType().toCode())
          .add("messageId", m.getMessageId() == null ? "" : m.getMessageId())
          .add("message", m.getMessage()));
    }
    return issues;
  }

  /** The command line, checked before anything is loaded. */
  private record Options(Path home, Map<String, Path> tarballs, String core, List<String> loads) {

    static Options parse(String[] args) {
      Path home = null;
      String core = null;
      Map<String, Path> tarballs = new LinkedHashMap<>();
      List<String> loads = new ArrayList<>();
      for (int i = 0; i + 1 < args.length; i += 2) {
        String value = args[i + 1];
        switch (args[i]) {
          case "--home" -> home = Path.of(value).toAbsolutePath();
          case "--core" -> core = value;
          case "--load" -> loads.add(value);
          case "--package" -> {
            String[] idPath = value.split("=", 2);
            File tgz = new File(idPath[1]);
            if (!idPath[0].contains("#") || !tgz.isFile()) {
              throw new IllegalArgumentException("--package wants ID#VERSION=TGZ, an existing file: " + value);
            }
            tarballs.put(idPath[0], tgz.toPath());
          }
          default -> throw new IllegalArgumentException("unknown option " + args[i]);
        }
      }
      if (home == null || core == null || args.length % 2 != 0) {
        throw new IllegalArgumentException(
            "usage: --home DIR --core ID#VERSION [--package ID#VERSION=TGZ]... [--load ID#VERSION]...");
      }
      return new Options(home, tarballs, core, loads);
    }

    String fhirVersion() {
      return core.substring(core.indexOf('#') + 1);
    }
  }
}
