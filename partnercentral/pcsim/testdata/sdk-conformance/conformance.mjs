// Drives pcsim with the official AWS SDK for JavaScript v3, as a user of
// that SDK would, and checks what the SDK makes of pcsim's answers.
// sdkconformance_test.go starts the simulators and runs this script with
// its configuration as JSON in PCSIM_CONFORMANCE; the script prints a JSON
// report on stdout, each failed check on stderr, and exits 1 if any failed.
//
// The configuration:
//   region, accessKeyId, secretAccessKey  what the simulators accept
//   endpoints.main      engagement and its contexts, no quota, no faults
//   endpoints.reads     a read quota of one call, spent by the first
//   endpoints.budget    a write budget of one write, spent by the first
//   endpoints.denied    every call denied
//   endpoints.failing   every call a 500
//   catalog, engagement, projectContext, leadContext, unknownEngagement
//   project             a CustomerProject payload member (an object)
//   regions             regions to resolve endpoints for, with and without FIPS

import {
  AccessDeniedException,
  ConflictException,
  GetEngagementCommand,
  InternalServerException,
  PartnerCentralSellingClient,
  ResourceNotFoundException,
  ServiceQuotaExceededException,
  ThrottlingException,
  UpdateEngagementContextCommand,
  ValidationException,
} from "@aws-sdk/client-partnercentral-selling";

const cfg = JSON.parse(process.env.PCSIM_CONFORMANCE);
const failures = [];
const report = { checks: 0, timestamps: {}, endpoints: [] };

function check(ok, what) {
  report.checks++;
  if (!ok) failures.push(what);
}

function fail(what) {
  check(false, what);
}

function client(endpoint, region = cfg.region) {
  return new PartnerCentralSellingClient({
    region,
    endpoint,
    // One attempt, as pcsync makes: a retried 429 or 500 would hide what
    // the first answer parsed into.
    maxAttempts: 1,
    credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey },
  });
}

function projectInput(engagementLastModifiedAt, title) {
  return {
    Catalog: cfg.catalog,
    EngagementIdentifier: cfg.engagement,
    ContextIdentifier: cfg.projectContext,
    EngagementLastModifiedAt: engagementLastModifiedAt,
    Type: "CustomerProject",
    Payload: { CustomerProject: { ...cfg.project, Project: { ...cfg.project.Project, Title: title } } },
  };
}

function isDate(v) {
  return v instanceof Date && !Number.isNaN(v.getTime());
}

// expectError runs call and checks that it fails with an instance of Cls,
// with its HTTP status, fault, message (the SDK moves the body's Message
// there) and request id, then runs more on it.
async function expectError(name, Cls, status, call, more) {
  let err;
  try {
    await call();
    fail(`${name}: the call succeeded, want ${Cls.name}`);
    return;
  } catch (e) {
    err = e;
  }
  if (!(err instanceof Cls)) {
    fail(`${name}: got ${err?.constructor?.name} ${err?.name}: ${err?.message}, want an instance of ${Cls.name}`);
    return;
  }
  check(err.name === Cls.name, `${name}: name ${err.name}, want ${Cls.name}`);
  check(err.$metadata?.httpStatusCode === status, `${name}: HTTP status ${err.$metadata?.httpStatusCode}, want ${status}`);
  check(err.$fault === (status >= 500 ? "server" : "client"), `${name}: $fault ${err.$fault}`);
  check(typeof err.message === "string" && err.message.length > 0 && err.message !== "UnknownError",
    `${name}: message ${JSON.stringify(err.message)}, want the service's`);
  check(typeof err.$metadata?.requestId === "string" && err.$metadata.requestId.length > 0,
    `${name}: no request id from x-amzn-RequestId`);
  more?.(err);
}

const main = client(cfg.endpoints.main);

// GetEngagement: ModifiedAt and CreatedAt are read as Dates.
const got = await main.send(new GetEngagementCommand({ Catalog: cfg.catalog, Identifier: cfg.engagement }));
check(got.Id === cfg.engagement, `GetEngagement: Id ${got.Id}, want ${cfg.engagement}`);
check(isDate(got.ModifiedAt), `GetEngagement: ModifiedAt ${got.ModifiedAt} is not a Date`);
check(isDate(got.CreatedAt), `GetEngagement: CreatedAt ${got.CreatedAt} is not a Date`);
check(Array.isArray(got.Contexts) && got.Contexts.length === 2, `GetEngagement: ${got.Contexts?.length} contexts, want 2`);
const project = got.Contexts?.find((c) => c.Id === cfg.projectContext);
check(project?.Type === "CustomerProject" && project?.Payload?.CustomerProject?.Customer?.CompanyName === cfg.project.Customer.CompanyName,
  `GetEngagement: context ${cfg.projectContext} is ${JSON.stringify(project)}, want the seeded CustomerProject`);
report.timestamps.read = got.ModifiedAt.toISOString();

// UpdateEngagementContext with the Date GetEngagement returned, then three
// more, each with the Date the previous one returned.
let last = got.ModifiedAt;
const titles = ["Read, then written", "Chained 1", "Chained 2", "Chained 3"];
for (const title of titles) {
  try {
    const out = await main.send(new UpdateEngagementContextCommand(projectInput(last, title)));
    check(isDate(out.EngagementLastModifiedAt), `update "${title}": EngagementLastModifiedAt ${out.EngagementLastModifiedAt} is not a Date`);
    check(out.EngagementId === cfg.engagement && out.ContextId === cfg.projectContext && out.EngagementArn?.startsWith("arn:"),
      `update "${title}": got ${JSON.stringify(out)}, want the engagement's id, ARN and context`);
    check(out.EngagementLastModifiedAt > last, `update "${title}": EngagementLastModifiedAt ${out.EngagementLastModifiedAt?.toISOString()} is not after ${last.toISOString()}`);
    last = out.EngagementLastModifiedAt;
  } catch (err) {
    fail(`update "${title}" with EngagementLastModifiedAt ${last.toISOString()}: ${err.name}: ${err.message}`);
    break;
  }
}
report.timestamps.last = last.toISOString();
report.lastTitle = titles[titles.length - 1];

// Every modeled error, parsed into its class with its fields.
await expectError("stale EngagementLastModifiedAt", ConflictException, 409,
  () => main.send(new UpdateEngagementContextCommand(projectInput(got.ModifiedAt, "stale"))));

const invalid = projectInput(last, "invalid");
invalid.Payload.CustomerProject.Customer = { ...invalid.Payload.CustomerProject.Customer, CountryCode: "USA" };
invalid.Payload.CustomerProject.Project = { ...invalid.Payload.CustomerProject.Project, BusinessProblem: "too short" };
await expectError("invalid payload", ValidationException, 400,
  () => main.send(new UpdateEngagementContextCommand(invalid)), (err) => {
    check(err.Reason === "REQUEST_VALIDATION_FAILED", `invalid payload: Reason ${err.Reason}, want REQUEST_VALIDATION_FAILED`);
    check(Array.isArray(err.ErrorList), `invalid payload: ErrorList ${JSON.stringify(err.ErrorList)} is not a list`);
    const want = {
      "Payload.CustomerProject.Customer.CountryCode": "INVALID_ENUM_VALUE",
      "Payload.CustomerProject.Project.BusinessProblem": "INVALID_VALUE",
    };
    for (const [field, code] of Object.entries(want)) {
      const e = err.ErrorList?.find((x) => x.FieldName === field);
      check(e?.Code === code && typeof e?.Message === "string" && e.Message.length > 0,
        `invalid payload: ErrorList entry for ${field} is ${JSON.stringify(e)}, want Code ${code} and a Message`);
    }
    check(err.ErrorList?.length === Object.keys(want).length, `invalid payload: ErrorList ${JSON.stringify(err.ErrorList)}, want ${Object.keys(want).length} entries`);
  });

const wrongType = {
  Catalog: cfg.catalog,
  EngagementIdentifier: cfg.engagement,
  ContextIdentifier: cfg.leadContext,
  EngagementLastModifiedAt: last,
  Type: "CustomerProject",
  Payload: { CustomerProject: cfg.project },
};
await expectError("Type of another context", ValidationException, 400,
  () => main.send(new UpdateEngagementContextCommand(wrongType)), (err) => {
    check(err.Reason === "BUSINESS_VALIDATION_FAILED", `Type of another context: Reason ${err.Reason}, want BUSINESS_VALIDATION_FAILED`);
    check(err.ErrorList?.length === 1 && err.ErrorList[0].FieldName === "Type" && err.ErrorList[0].Code && err.ErrorList[0].Message,
      `Type of another context: ErrorList ${JSON.stringify(err.ErrorList)}, want one entry for Type`);
  });

await expectError("unknown engagement", ResourceNotFoundException, 404,
  () => main.send(new GetEngagementCommand({ Catalog: cfg.catalog, Identifier: cfg.unknownEngagement })));

const reads = client(cfg.endpoints.reads);
await reads.send(new GetEngagementCommand({ Catalog: cfg.catalog, Identifier: cfg.engagement })).catch(() => {});
await expectError("read quota spent", ThrottlingException, 429,
  () => reads.send(new GetEngagementCommand({ Catalog: cfg.catalog, Identifier: cfg.engagement })));

const budget = client(cfg.endpoints.budget);
await budget.send(new UpdateEngagementContextCommand(projectInput(last, "budget"))).catch(() => {});
await expectError("write budget spent", ServiceQuotaExceededException, 402,
  () => budget.send(new UpdateEngagementContextCommand(projectInput(last, "budget"))));

await expectError("access denied", AccessDeniedException, 403,
  () => client(cfg.endpoints.denied).send(new GetEngagementCommand({ Catalog: cfg.catalog, Identifier: cfg.engagement })));

await expectError("internal error", InternalServerException, 500,
  () => client(cfg.endpoints.failing).send(new GetEngagementCommand({ Catalog: cfg.catalog, Identifier: cfg.engagement })));

// The SDK's endpoint rules, for the Go resolver to be compared with.
const resolve = main.config.endpointProvider;
for (const region of cfg.regions) {
  for (const fips of [false, true]) {
    const { url } = resolve({ Region: region, UseFIPS: fips });
    report.endpoints.push({ region, fips, url: url.href.replace(/\/$/, "") });
  }
}

process.stdout.write(JSON.stringify(report) + "\n");
for (const f of failures) {
  process.stderr.write(`FAIL ${f}\n`);
}
process.stderr.write(`${report.checks - failures.length} passed, ${failures.length} failed\n`);
process.exit(failures.length === 0 ? 0 : 1);
