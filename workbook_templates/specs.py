"""Declarative specs of the planning templates: columns, tables, sheets and workbooks.

A spec says what a sheet holds; :mod:`workbook_templates.builders` turns it into an openpyxl
Workbook. Column formulas are templates: ``{Header}`` is that column's cell in the same row,
``{Table.Header}`` the whole data range of a column of any table in the workbook, and
``{r}`` the row number; names such as ``AsOfDate`` are copied as they are.

Every list an analyst picks from that the engine also reads (categories, Client/Customer,
conversion tips, buyer types) comes from the rulebook, so Excel's validation and the engine
agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from relationships.engine import CLIENT, CUSTOMER
from relationships.rulebook import Rulebook, normalize_header
from relationships.schema import map_columns
from workbook_templates import formulas as fx

INPUT_KINDS = ("text", "number", "whole", "percent", "date", "choice")
COMPUTED_KINDS = ("formula", "addin")
KINDS = (*INPUT_KINDS, *COMPUTED_KINDS, "constant")
SAMPLE_NOTE = "Sample row: replace or delete"
SAMPLE_PREFIX = "Sample"


@dataclass(frozen=True)
class Column:
    """One table column: an input analysts fill, a formula, an add-in formula or a constant."""

    header: str
    kind: str = "text"
    width: float = 14
    help: str = ""  # the input message (inputs) or what the column shows
    choices: tuple[str, ...] = ()  # drop-down values (kind "choice")
    choices_from: str | None = None  # or a range template, e.g. "{Stages.Stage}"
    strict: bool = True  # reject values off the list/range (else warn and allow)
    minimum: float | None = 0  # number, whole, percent
    maximum: float | None = None
    custom_rule: str | None = None  # a custom validation formula template (replaces the above)
    formula: str | None = None  # template (kinds "formula" and "addin")
    number_format: str | None = None
    helper: bool = False  # hidden in a collapsed column group
    field: str | None = None  # the rulebook field an input feeds
    wrap: bool = False
    error: str = ""  # the validation error message (default: from the kind)
    highlights: tuple[tuple[str, str], ...] = ()  # (condition template, look) for CF
    databar: tuple[float, float] | None = None  # a data bar from min to max

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.header!r}: unknown kind {self.kind!r}")
        if (self.formula is not None) != (self.kind in COMPUTED_KINDS):
            raise ValueError(f"column {self.header!r}: only formula columns have a formula")

    @property
    def is_input(self) -> bool:
        return self.kind in INPUT_KINDS

    @property
    def fmt(self) -> str | None:
        if self.number_format:
            return self.number_format
        return {"date": "yyyy-mm-dd", "percent": "0%", "whole": "0", "text": "@"}.get(self.kind)


@dataclass(frozen=True)
class TableSpec:
    """An Excel Table: its columns, the rows it ships with and how many rows it holds."""

    name: str
    columns: tuple[Column, ...]
    rows: tuple[Mapping[str, Any], ...] = ()  # sample or fixed rows, keyed by header
    capacity: int = 50  # data rows (inputs styled and formulas filled in every one)
    style: str = "TableStyleLight1"

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]


@dataclass(frozen=True)
class NamedCell:
    """A single named cell above a table: an input (As of date, targets) or a KPI formula."""

    name: str
    label: str
    value: Any  # a value or a formula template
    kind: str = "formula"  # an input kind, or "formula"
    help: str = ""
    number_format: str | None = None

    @property
    def is_input(self) -> bool:
        return self.kind in INPUT_KINDS


@dataclass(frozen=True)
class ChartSpec:
    """A chart over columns of a table (the series are usually formula columns)."""

    kind: str  # "col", "bar" or "line"
    title: str
    table: str
    categories: str
    series: tuple[str, ...]
    anchor: str
    y_title: str = ""
    percent: bool = False
    rows: int | None = None  # only the first N data rows
    width: float = 15.0
    height: float = 7.5


@dataclass(frozen=True)
class SheetSpec:
    """A worksheet: title, intro, named cells, at most one table, charts.

    ``kind`` "table" is built from this spec; "scoring" and "rules" are the classifier's
    generated sheets.
    """

    name: str
    title: str
    intro: str = ""
    cells: tuple[NamedCell, ...] = ()
    table: TableSpec | None = None
    charts: tuple[ChartSpec, ...] = ()
    kind: str = "table"
    landscape: bool = True
    tab_color: str | None = None
    freeze_first_column: bool = True

    @property
    def header_row(self) -> int:
        """Title in row 1, intro in row 2, named cells from row 4, a blank row, the header."""
        return 4 + len(self.cells) + 1 if self.cells else 4


@dataclass(frozen=True)
class Para:
    """One paragraph of an Instructions sheet: kind h1, h2, p, step or quote."""

    kind: str
    text: str
    source: str = ""  # for quotes: the seed file the text is quoted from


@dataclass(frozen=True)
class TemplateSpec:
    key: str  # file stem
    title: str
    subject: str
    description: str
    keywords: str
    instructions: tuple[Para, ...]
    sheets: tuple[SheetSpec, ...]
    main_sheet: str
    extra_names: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # name -> template

    def sheet(self, name: str) -> SheetSpec:
        for s in self.sheets:
            if s.name == name:
                return s
        raise KeyError(name)


def choice_label(value: str) -> str:
    """A vocabulary value as a drop-down shows it (the engine folds case: same meaning)."""
    return value[:1].upper() + value[1:]


# ------------------------------------------------------------------------------ seeds
S000 = "000_96f26f3ceb6dfeb7.txt"
S001 = "001_372c9482e13135c0.txt"
S002 = "002_fcd6a2413cbfce1d.txt"
S003 = "003_e4be254b6166faa6.txt"
S004 = "004_3a6dd8ead22f8ab4.txt"

LEGEND = (
    Para("h2", "Colours and protection"),
    Para(
        "p",
        "Yellow cells are inputs: type or paste there. Grey cells are formulas: they are "
        "locked, and every sheet is protected without a password (Review > Unprotect Sheet) "
        "so a formula is not overwritten by accident. Unprotect a sheet to add rows beyond the "
        "table's prepared rows or to change a formula.",
    ),
    Para(
        "p",
        "Rows whose Notes start with 'Sample' show grey italics: they are examples. Overwrite "
        "them or clear them (select the yellow cells, press Delete).",
    ),
)


# ------------------------------------------------------------------------------ classifier
CLASSIFIER_TABLE = "Accounts"
CLASSIFIER_SHEET = "Accounts"


def input_header(rb: Rulebook, field_name: str) -> str:
    """The column header for a field: its humanized name if the rulebook maps it back."""
    spec = rb.field(field_name)
    candidates = [field_name.replace("_", " ").capitalize()] + [
        h[:1].upper() + h[1:] for h in spec.headers
    ]
    words = rb.ignore_word_set()
    lookup = rb.header_lookup()
    for c in candidates:
        if lookup.get(normalize_header(c, words)) == field_name:
            return c
    return field_name


def classifier_input_columns(rb: Rulebook) -> list[Column]:
    cols = []
    for f in rb.fields:
        header = input_header(rb, f.name)
        desc = f.description[:240]
        if f.kind == "text":
            width = {"account": 26, "offering": 32}.get(f.name, 22)
            cols.append(Column(header, "text", width, desc, field=f.name))
        elif f.kind == "number":
            cols.append(Column(header, "number", 12, desc, field=f.name, number_format="General"))
        elif f.kind == "date":
            cols.append(
                Column(
                    header,
                    "date",
                    13,
                    (desc + " Counts only when the months column is blank.")[:255],
                    field=f.name,
                )
            )
        else:
            values = tuple(choice_label(v) for v in rb.vocabulary_values(f.name))
            cols.append(
                Column(
                    header,
                    "choice",
                    13,
                    desc,
                    choices=values,
                    strict=False,
                    field=f.name,
                    error=(
                        f"Not one of {', '.join(values)}. A synonym listed on the Rules sheet "
                        "(section 'synonym') works too; any other value counts as unknown. "
                        "Keep it?"
                    ),
                )
            )
    return cols


def _sample_rows(rb: Rulebook, headers: Mapping[str, str]) -> tuple[dict[str, Any], ...]:
    samples: list[dict[str, Any]] = [
        {
            "account": "Harbor & Finch Law LLP",
            "business_type": "Law firm",
            "offering": "Contract review and legal advice",
            "payment_model": "Monthly retainer",
            "relationship_months": 38,
            "purchases_per_year": 12,
            "personalization": "Tailored",
            "advice": "Yes",
            "contacts_per_month": 4,
            "personal_use": "No",
            "decision_days": 21,
            "price_focus": "Value",
            "referrals": 3,
        },
        {
            "account": "Jamie Rivera",
            "business_type": "Retail store",
            "offering": "Running shoes",
            "payment_model": "One-time purchase",
            "relationship_months": 2,
            "purchases_per_year": 1,
            "personalization": "Standard",
            "advice": "No",
            "contacts_per_month": 0,
            "personal_use": "Yes",
            "decision_days": 1,
            "price_focus": "Price",
            "referrals": 0,
        },
        {
            "account": "Northwind Apps Ltd",
            "business_type": "SaaS platform",
            "offering": "Software subscription plus implementation consulting",
            "payment_model": "Monthly subscription",
            "customer_since": dt.date(2022, 5, 1),
            "purchases_per_year": 12,
            "personalization": "Partial",
            "advice": "Yes",
            "contacts_per_month": 2,
            "personal_use": "No",
            "decision_days": 30,
            "price_focus": "Value",
            "referrals": 1,
        },
        {
            "account": "Corner Café",
            "business_type": "Restaurant",
            "offering": "Catering for a staff party",
            "payment_model": "Card payment",
            "relationship_months": 8,
            "purchases_per_year": 3,
            "personalization": "Standard",
            "advice": "No",
            "contacts_per_month": 0.5,
            "personal_use": "No",
            "decision_days": 3,
            "price_focus": "Price",
            "referrals": 0,
        },
    ]
    out = []
    for s in samples:
        row = {headers[k]: v for k, v in s.items() if k in headers}
        row["Notes"] = SAMPLE_NOTE
        out.append(row)
    return tuple(out)


def classifier_spec(
    rb: Rulebook,
    *,
    rows: tuple[Mapping[str, Any], ...] | None = None,
    capacity: int | None = None,
    as_of: dt.date | None = None,
) -> TemplateSpec:
    """The account classifier; ``rows`` (keyed by header) replace the sample rows."""
    rules = fx.rules_ref(rb)
    layout = fx.scoring_layout(rb)
    inputs = classifier_input_columns(rb)
    headers = {c.field: c.header for c in inputs if c.field}
    computed = fx.classifier_formula_columns(rb, headers, rules, layout, table=CLASSIFIER_TABLE)
    formats = {fx.SCORE_FORMULA: "0", fx.SCORE_ADDIN: "0"}

    def verdict(header: str) -> tuple[tuple[str, str], ...]:
        cell = "{" + header + "}"
        return ((f'{cell}="{CLIENT}"', "good"), (f'{cell}="{CUSTOMER}"', "warn"))

    addin, plain = "{" + fx.TYPE_ADDIN + "}", "{" + fx.TYPE_FORMULA + "}"
    mismatch = (f'AND(NOT(ISERROR({addin})),{addin}<>"",{addin}<>{plain})', "bad")
    highlights = {
        fx.TYPE_FORMULA: verdict(fx.TYPE_FORMULA),
        fx.TYPE_ADDIN: (mismatch, *verdict(fx.TYPE_ADDIN)),
    }
    bars = {
        fx.SCORE_FORMULA: (rb.settings.min_score, rb.settings.max_score),
        fx.SCORE_ADDIN: (rb.settings.min_score, rb.settings.max_score),
    }
    columns = [
        *inputs,
        Column("Notes", "text", 24, "Anything worth knowing; 'Sample...' marks an example row."),
        *(
            Column(
                c.header,
                c.kind,
                7 if c.helper else (44 if c.header == fx.TIPS_ADDIN else 13),
                c.help,
                formula=c.formula,
                helper=c.helper,
                number_format=formats.get(c.header),
                wrap=c.header == fx.TIPS_ADDIN,
                highlights=highlights.get(c.header, ()),
                databar=bars.get(c.header),
            )
            for c in computed
        ),
    ]
    _check_helpers_unmapped(rb, columns)
    table_rows = rows if rows is not None else _sample_rows(rb, headers)
    cap = capacity if capacity is not None else (200 if rows is None else max(len(rows), 1))
    if cap < len(table_rows):
        raise ValueError(f"capacity {cap} is less than the {len(table_rows)} rows given")
    accounts = SheetSpec(
        CLASSIFIER_SHEET,
        "Account classifier: clients or customers?",
        "Fill the yellow columns, one account a row. The grey columns classify each row twice: "
        "with plain formulas over the Rules sheet (works anywhere) and with the add-in's "
        "functions (needs the add-in).",
        cells=(
            NamedCell(
                fx.AS_OF,
                "As of",
                as_of if as_of is not None else "=TODAY()",
                "date",
                "The date months since 'Customer since' are counted to (default: today).",
            ),
            NamedCell(
                "RulesCheck",
                "Rules sheet",
                fx.rules_check_formula(rules, layout),
                "formula",
                "Whether the Rules sheet still has the signals these formulas were built for.",
            ),
        ),
        table=TableSpec(CLASSIFIER_TABLE, tuple(columns), tuple(table_rows), cap),
        tab_color="305496",
    )
    scoring = SheetSpec(
        fx.SCORING_SHEET,
        "Scoring: what the plain formulas read from the Rules sheet",
        "One row per signal and buyer rule of the rulebook this template was built from. "
        "Every number, keyword, synonym, weight and link is read from the Rules sheet.",
        kind="scoring",
        freeze_first_column=False,
    )
    rules_sheet = SheetSpec("Rules", "Rules", kind="rules", freeze_first_column=False)
    return TemplateSpec(
        key="account-classifier",
        title="Account classifier",
        subject="Tell clients from customers, account by account",
        description=(
            "Accounts table classified twice: by the add-in's RELATIONSHIP_TYPE, CLIENT_SCORE "
            "and CONVERSION_TIPS, and by plain formulas over the Rules sheet (Excel 2016+, "
            "LibreOffice 7.4, Google Sheets)."
        ),
        keywords="client, customer, classifier, rulebook",
        instructions=_classifier_instructions(rb),
        sheets=(accounts, scoring, rules_sheet),
        main_sheet=CLASSIFIER_SHEET,
        extra_names=tuple(rules.names().items()),
    )


def _check_helpers_unmapped(rb: Rulebook, columns: list[Column]) -> None:
    """Only the input columns may map to rulebook fields (the batch tool reads this table)."""
    mapping = map_columns([c.header for c in columns], rb)
    expected = {c.field: c.header for c in columns if c.field}
    if mapping.fields != expected:
        wrong = {f: h for f, h in mapping.fields.items() if expected.get(f) != h}
        raise ValueError(f"template headers map to the wrong fields: {wrong}")


def _classifier_instructions(rb: Rulebook) -> tuple[Para, ...]:
    fields = ", ".join(input_header(rb, f.name) for f in rb.fields)
    return (
        Para("h1", "Account classifier"),
        Para(
            "p",
            "Tells, account by account, whether a relationship is a client (long-term, "
            "personalized, advice-driven) or a customer (transactional), scores it 0-100, "
            "and suggests how to turn a customer into a client.",
        ),
        Para(
            "quote",
            "A client is an individual or organization that seeks ongoing professional "
            "services, consultation, or expertise from a business.",
            S000,
        ),
        Para(
            "quote",
            "On the other hand, customers engage in one-off transactions with a business to "
            "purchase goods or services.",
            S000,
        ),
        Para("h2", "How to use it"),
        Para("step", f"On the Accounts sheet, fill one row per account: {fields}."),
        Para(
            "step",
            "Leave a cell blank when you do not know: a blank counts as neither client nor "
            "customer evidence. Pick categories from the drop-downs; the synonyms listed on "
            "the Rules sheet (e.g. 'bespoke' for Tailored) work too.",
        ),
        Para(
            "step",
            "Read the grey columns. Type (formula) and Score (formula) are plain spreadsheet "
            "formulas over the Rules sheet: they work in Excel 2016+, LibreOffice and Google "
            "Sheets without the add-in. Buyer type (formula) says Consumer or Business.",
        ),
        Para(
            "step",
            "Type (add-in), Score (add-in) and Tips (add-in) call the add-in's functions "
            "RELATIONSHIP_TYPE, CLIENT_SCORE and CONVERSION_TIPS. They show #NAME? until the "
            "add-in is installed and its functions are imported; then press Ctrl+Alt+F9 to "
            "recalculate. In LibreOffice and Google Sheets they stay #NAME?.",
        ),
        Para(
            "step",
            "'As of' (default: today) is the date months are counted to when only 'Customer "
            "since' is given.",
        ),
        Para("h2", "Changing the rules"),
        Para(
            "p",
            "The Rules sheet is the rulebook: settings (base, threshold), keywords, synonyms, "
            "signal weights and thresholds, and which signals cancel which (links). Edit a "
            "number or a keyword, or add a keyword or synonym row, and both the formulas and "
            "the add-in follow. The Scoring sheet shows what the formulas read.",
        ),
        Para(
            "p",
            "Adding a new signal or field needs a rebuilt template: run 'relationship "
            "templates --rules my-rules.xlsx'. The 'Rules sheet' cell at the top of the "
            "Accounts sheet tells you when that is needed.",
        ),
        Para("h2", "How the score works"),
        Para(
            "p",
            "score = base + the weights of the signals that fire, kept between min_score and "
            "max_score; Client when the score reaches the threshold. A signal that lists "
            "another in its links does not count when that other signal fires. The hidden, "
            "grouped columns to the right (click + above them) show each field as read, "
            "each signal (sig) and the points it adds (pts).",
        ),
        *LEGEND,
    )


# ------------------------------------------------------------------------------ strategy plan
YES_NO = ("Yes", "No")
FREQUENCIES = (
    ("Weekly", 7),
    ("Every two weeks", 14),
    ("Monthly", 30),
    ("Every two months", 61),
    ("Quarterly", 91),
    ("Twice a year", 182),
    ("Yearly", 365),
)
CHANNELS = ("Meeting", "Video call", "Phone call", "Email", "Newsletter", "Event", "Site visit")
VALUE_FORMATS = ("Workshop", "Webinar", "Educational content", "Guide", "Newsletter", "Event")
STORY_TYPES = ("Case study", "Testimonial", "Referral", "Review")
SERVICE_STATUS = ("Idea", "Planned", "Live", "Paused")


def _buyer_types(rb: Rulebook) -> tuple[str, ...]:
    seen: list[str] = []
    for b in rb.buyer_rules:
        if b.buyer_type not in seen:
            seen.append(b.buyer_type)
    return tuple(seen) or ("Consumer", "Business")


def strategy_plan_spec(rb: Rulebook, *, as_of: dt.date | None = None) -> TemplateSpec:
    """The client-centric strategy plan (seed 001's five steps) with a KPI dashboard."""
    relationship = Column(
        "Relationship",
        "choice",
        12,
        "Client or Customer (the classifier's verdict for this group).",
        choices=(CLIENT, CUSTOMER),
    )
    persona_pick = Column(
        "Persona",
        "choice",
        20,
        "Pick a persona from the Personas sheet.",
        choices_from="{Personas.Persona}",
        strict=False,
    )
    personas = TableSpec(
        "Personas",
        (
            Column("Segment", "text", 18, "An audience segment (who they are).", wrap=True),
            Column("Persona", "text", 20, "A short name for the buyer persona.", wrap=True),
            relationship,
            Column(
                "Buyer type",
                "choice",
                11,
                "Consumer (personal use) or Business.",
                choices=_buyer_types(rb),
            ),
            Column("Needs", "text", 26, "What they need from us.", wrap=True),
            Column("Pain points", "text", 26, "What gets in their way.", wrap=True),
            Column("Preferences", "text", 24, "How they like to work with us.", wrap=True),
            Column("Goals", "text", 22, "What they want to achieve.", wrap=True),
            Column("Accounts", "whole", 10, "How many accounts fit this persona."),
            Column(
                "Services",
                "formula",
                10,
                "Personalized services planned for this persona.",
                formula='=IF({Persona}="","",COUNTIF({Services.Persona},{Persona}))',
            ),
            Column(
                "Touchpoints",
                "formula",
                11,
                "Cadence touchpoints planned for this persona.",
                formula='=IF({Persona}="","",COUNTIF({Cadence.Persona},{Persona}))',
            ),
            Column(
                "Complete",
                "formula",
                18,
                "Whether needs, pain points and preferences are filled in.",
                formula=(
                    '=IF({Persona}="","",IF(COUNTBLANK({Needs}:{Preferences})=0,"Complete",'
                    '"Add needs, pain points, preferences"))'
                ),
                wrap=True,
                highlights=(('AND({Complete}<>"",{Complete}<>"Complete")', "warn"),),
            ),
            Column("Notes", "text", 22, "Anything else; 'Sample...' marks an example row."),
        ),
        rows=(
            {
                "Segment": "Professional firms",
                "Persona": "Managing partner",
                "Relationship": CLIENT,
                "Buyer type": "Business",
                "Needs": "Ongoing expert advice, one trusted contact",
                "Pain points": "No time to brief new suppliers",
                "Preferences": "Quarterly reviews, short written summaries",
                "Goals": "Grow the firm without surprises",
                "Accounts": 25,
                "Notes": SAMPLE_NOTE,
            },
            {
                "Segment": "Households",
                "Persona": "Busy parent",
                "Relationship": CUSTOMER,
                "Buyer type": "Consumer",
                "Needs": "Quick, reliable purchases",
                "Pain points": "Comparing prices takes time",
                "Preferences": "Online, self-service",
                "Goals": "Good value with no hassle",
                "Accounts": 400,
                "Notes": SAMPLE_NOTE,
            },
        ),
        capacity=20,
    )
    services = TableSpec(
        "Services",
        (
            persona_pick,
            Column("Service", "text", 26, "The personalized service or offer.", wrap=True),
            Column(
                "How it is personalized",
                "text",
                32,
                "What you tailor to this persona's needs and preferences.",
                wrap=True,
            ),
            Column(
                "Personalization",
                "choice",
                14,
                "How tailored it is (the rulebook's personalization values).",
                choices=tuple(choice_label(v) for v in rb.vocabulary_values("personalization"))
                if "personalization" in rb.field_names()
                else ("Tailored", "Partial", "Standard"),
            ),
            Column("Owner", "text", 14, "Who delivers it."),
            Column(
                "Status", "choice", 10, "Idea, Planned, Live or Paused.", choices=SERVICE_STATUS
            ),
            Column("Review date", "date", 12, "When to review whether it still fits."),
            Column(
                "Review",
                "formula",
                10,
                "Overdue when the review date has passed.",
                formula=(
                    '=IF({Review date}="","",IF({Review date}<INT(AsOfDate),"Overdue","Planned"))'
                ),
                highlights=(('{Review}="Overdue"', "bad"),),
            ),
            Column("Notes", "text", 22, "Anything else; 'Sample...' marks an example row."),
        ),
        rows=(
            {
                "Persona": "Managing partner",
                "Service": "Quarterly strategy review",
                "How it is personalized": "Agenda built from their goals and last quarter's "
                "questions",
                "Personalization": "Tailored",
                "Owner": "Account lead",
                "Status": "Live",
                "Review date": dt.date(2025, 3, 31),
                "Notes": SAMPLE_NOTE,
            },
        ),
        capacity=30,
    )
    cadence = TableSpec(
        "Cadence",
        (
            Column("Account", "text", 22, "The account this touchpoint is for."),
            relationship,
            persona_pick,
            Column(
                "Touchpoint", "text", 24, "What happens (review, check-in, newsletter).", wrap=True
            ),
            Column("Channel", "choice", 12, "How you reach them.", choices=CHANNELS, strict=False),
            Column(
                "Frequency",
                "choice",
                15,
                "How often (edit the choices and their days on the Lists sheet).",
                choices_from="{Frequencies.Frequency}",
            ),
            Column(
                "Every (days)",
                "formula",
                9,
                "Days between touchpoints, from the Lists sheet.",
                formula=(
                    '=IF({Frequency}="","",IFERROR(INDEX({Frequencies.Days},'
                    'MATCH({Frequency},{Frequencies.Frequency},0)),""))'
                ),
                number_format="0",
            ),
            Column("Owner", "text", 14, "Who owns the touchpoint."),
            Column("Last contact", "date", 12, "When it last happened."),
            Column(
                "Next date",
                "formula",
                12,
                "Last contact + frequency.",
                formula=(
                    '=IF(OR({Last contact}="",{Every (days)}=""),"",{Last contact}+{Every (days)})'
                ),
                number_format="yyyy-mm-dd",
                highlights=(('{Status}="Overdue"', "bad"), ('{Status}="Due this week"', "warn")),
            ),
            Column(
                "Status",
                "formula",
                13,
                "Overdue, Due this week or Planned, against the As of date.",
                formula=(
                    '=IF({Next date}="","",IF({Next date}<INT(AsOfDate),"Overdue",'
                    'IF({Next date}-INT(AsOfDate)<=7,"Due this week","Planned")))'
                ),
                highlights=(('{Status}="Overdue"', "bad"), ('{Status}="Due this week"', "warn")),
            ),
            Column(
                "Days overdue",
                "formula",
                9,
                "How many days past the next date.",
                formula='=IF({Status}="Overdue",INT(AsOfDate)-{Next date},"")',
                number_format="0",
                highlights=(('{Status}="Overdue"', "bad"),),
            ),
            Column("Notes", "text", 22, "Anything else; 'Sample...' marks an example row."),
        ),
        rows=(
            {
                "Account": "Harbor & Finch Law LLP",
                "Relationship": CLIENT,
                "Persona": "Managing partner",
                "Touchpoint": "Quarterly strategy review",
                "Channel": "Meeting",
                "Frequency": "Quarterly",
                "Owner": "Account lead",
                "Last contact": dt.date(2025, 1, 15),
                "Notes": SAMPLE_NOTE,
            },
            {
                "Account": "Harbor & Finch Law LLP",
                "Relationship": CLIENT,
                "Persona": "Managing partner",
                "Touchpoint": "Monthly check-in call",
                "Channel": "Phone call",
                "Frequency": "Monthly",
                "Owner": "Account lead",
                "Last contact": dt.date(2025, 3, 3),
                "Notes": SAMPLE_NOTE,
            },
            {
                "Account": "Jamie Rivera",
                "Relationship": CUSTOMER,
                "Persona": "Busy parent",
                "Touchpoint": "Post-purchase follow-up",
                "Channel": "Email",
                "Frequency": "Every two months",
                "Owner": "Store team",
                "Last contact": dt.date(2025, 1, 20),
                "Notes": SAMPLE_NOTE,
            },
        ),
        capacity=100,
    )
    stories = TableSpec(
        "Stories",
        (
            Column("Account", "text", 22, "Whose success it is."),
            Column("Story type", "choice", 13, "Case study or testimonial.", choices=STORY_TYPES),
            Column("Challenge", "text", 26, "The challenge they had.", wrap=True),
            Column("What we did", "text", 26, "How we addressed it.", wrap=True),
            Column("Result", "text", 22, "The result, with a number if you can.", wrap=True),
            Column("Quote", "text", 28, "Their words (a testimonial).", wrap=True),
            Column(
                "Permission",
                "choice",
                11,
                "Did they agree to publication? Yes, No or Asked.",
                choices=("Yes", "No", "Asked"),
            ),
            Column("Published", "date", 12, "When it was published."),
            Column("Where used", "text", 18, "Website, proposal, newsletter..."),
            Column(
                "Status",
                "formula",
                15,
                "Ask permission, Ready to publish or Published.",
                formula=(
                    '=IF({Account}="","",IF({Permission}<>"Yes","Ask permission",'
                    'IF({Published}="","Ready to publish","Published")))'
                ),
                highlights=(
                    ('{Status}="Ask permission"', "warn"),
                    ('{Status}="Published"', "good"),
                ),
            ),
            Column("Notes", "text", 22, "Anything else; 'Sample...' marks an example row."),
        ),
        rows=(
            {
                "Account": "Harbor & Finch Law LLP",
                "Story type": "Case study",
                "Challenge": "Contract backlog slowed every deal",
                "What we did": "Retained review team with a 48-hour turnaround",
                "Result": "Deals closed 30% faster",
                "Quote": "They know our business as well as we do.",
                "Permission": "Yes",
                "Notes": SAMPLE_NOTE,
            },
        ),
        capacity=30,
    )
    value_added = TableSpec(
        "ValueAdded",
        (
            Column("Title", "text", 26, "Name of the workshop, webinar or content.", wrap=True),
            Column(
                "Format",
                "choice",
                14,
                "Workshop, webinar, educational content...",
                choices=VALUE_FORMATS,
            ),
            persona_pick,
            Column("Date", "date", 12, "When it takes place or is published."),
            Column("Owner", "text", 14, "Who runs it."),
            Column("Invited", "whole", 9, "How many accounts were invited."),
            Column("Attended", "whole", 9, "How many took part or read it."),
            Column(
                "Attendance",
                "formula",
                11,
                "Attended / invited.",
                formula=('=IF(OR({Invited}="",{Invited}=0),"",N({Attended})/{Invited})'),
                number_format="0%",
                databar=(0, 1),
            ),
            Column("Follow-ups", "whole", 10, "Follow-up conversations it led to."),
            Column(
                "Status",
                "formula",
                10,
                "Held or Upcoming, against the As of date.",
                formula='=IF({Date}="","",IF({Date}<=INT(AsOfDate),"Held","Upcoming"))',
            ),
            Column("Notes", "text", 22, "Anything else; 'Sample...' marks an example row."),
        ),
        rows=(
            {
                "Title": "Contract risk workshop",
                "Format": "Workshop",
                "Persona": "Managing partner",
                "Date": dt.date(2025, 2, 12),
                "Owner": "Account lead",
                "Invited": 20,
                "Attended": 14,
                "Follow-ups": 5,
                "Notes": SAMPLE_NOTE,
            },
        ),
        capacity=30,
    )
    months = [f"2025-{m:02d}" for m in range(1, 13)]
    kpi_rows = []
    clients = 40
    for i, period in enumerate(months):
        new, lost = 3 + i % 3, 1 + (i % 4 == 0)
        kpi_rows.append(
            {
                "Period": period,
                "Clients at start": clients,
                "New clients": new,
                "Clients lost": lost,
                "Customers": 420 - 4 * i,
                "Conversions": 2 + i % 3,
                "Referrals": 3 + (i * 5) % 4,
                "Notes": SAMPLE_NOTE,
            }
        )
        clients = clients + new - lost
    kpis = TableSpec(
        "KPIs",
        (
            Column("Period", "text", 10, "The month or quarter, e.g. 2025-01."),
            Column("Clients at start", "whole", 10, "Clients at the start of the period."),
            Column("New clients", "whole", 9, "Clients gained (including conversions)."),
            Column("Clients lost", "whole", 9, "Clients who left."),
            Column(
                "Clients at end",
                "formula",
                10,
                "Start + new - lost.",
                formula=(
                    '=IF({Period}="","",N({Clients at start})+N({New clients})-N({Clients lost}))'
                ),
                number_format="0",
            ),
            Column("Customers", "whole", 10, "Customers (transactional accounts) at the end."),
            Column("Conversions", "whole", 10, "Customers who became clients in the period."),
            Column("Referrals", "whole", 9, "Referrals and testimonials received."),
            Column(
                "Retention",
                "formula",
                10,
                "Clients kept: (start - lost) / start.",
                formula=(
                    '=IF(OR({Clients at start}="",{Clients at start}=0),"",'
                    "({Clients at start}-N({Clients lost}))/{Clients at start})"
                ),
                number_format="0.0%",
                highlights=(('AND({Retention}<>"",{Retention}<RetentionTarget)', "warn"),),
            ),
            Column(
                "Client share",
                "formula",
                10,
                "Clients / (clients + customers) at the end.",
                formula=(
                    '=IF({Period}="","",IF({Clients at end}+N({Customers})=0,"",'
                    "{Clients at end}/({Clients at end}+N({Customers}))))"
                ),
                number_format="0.0%",
            ),
            Column(
                "Conversion rate",
                "formula",
                11,
                "Conversions / customers.",
                formula=('=IF(OR({Customers}="",{Customers}=0),"",N({Conversions})/{Customers})'),
                number_format="0.0%",
            ),
            Column("Notes", "text", 22, "Anything else; 'Sample...' marks an example row."),
        ),
        rows=tuple(kpi_rows),
        capacity=12,
    )
    frequencies = TableSpec(
        "Frequencies",
        (
            Column("Frequency", "text", 18, "A frequency name for the Cadence drop-down."),
            Column("Days", "whole", 8, "Days between touchpoints.", minimum=1),
        ),
        rows=tuple({"Frequency": f, "Days": d} for f, d in FREQUENCIES),
        capacity=12,
    )

    def last(col: str) -> str:
        return f'=IF(COUNTA({{KPIs.Period}})=0,"",INDEX({{KPIs.{col}}},COUNTA({{KPIs.Period}})))'

    dashboard = SheetSpec(
        "Dashboard",
        "KPI dashboard: clients, customers, retention, referrals, conversions",
        "Fill one row per period in the KPIs table; the tiles and charts follow.",
        cells=(
            NamedCell(
                fx.AS_OF,
                "As of",
                as_of if as_of is not None else "=TODAY()",
                "date",
                "The date statuses are judged against (default: today).",
            ),
            NamedCell(
                "RetentionTarget",
                "Retention target",
                0.9,
                "percent",
                "Periods whose client retention falls below this turn amber.",
            ),
            NamedCell("LatestPeriod", "Latest period", last("Period"), number_format="@"),
            NamedCell("LatestClients", "Clients", last("Clients at end"), number_format="0"),
            NamedCell("LatestCustomers", "Customers", last("Customers"), number_format="0"),
            NamedCell(
                "LatestRetention", "Client retention", last("Retention"), number_format="0.0%"
            ),
            NamedCell(
                "TotalReferrals",
                "Referrals (all periods)",
                "=SUM({KPIs.Referrals})",
                number_format="0",
            ),
            NamedCell(
                "TotalConversions",
                "Conversions (all periods)",
                "=SUM({KPIs.Conversions})",
                number_format="0",
            ),
            NamedCell(
                "OverdueTouchpoints",
                "Touchpoints overdue",
                '=COUNTIF({Cadence.Status},"Overdue")',
                number_format="0",
            ),
            NamedCell(
                "PublishedStories",
                "Success stories published",
                '=COUNTIF({Stories.Status},"Published")',
                number_format="0",
            ),
            NamedCell(
                "EventsHeld",
                "Value-added events held",
                '=COUNTIF({ValueAdded.Status},"Held")',
                number_format="0",
            ),
        ),
        table=kpis,
        charts=(
            ChartSpec(
                "col",
                "Clients and customers",
                "KPIs",
                "Period",
                ("Clients at end", "Customers"),
                "N3",
                y_title="Accounts",
            ),
            ChartSpec(
                "line",
                "Retention and client share",
                "KPIs",
                "Period",
                ("Retention", "Client share"),
                "N19",
                percent=True,
            ),
            ChartSpec(
                "col",
                "Referrals and conversions",
                "KPIs",
                "Period",
                ("Referrals", "Conversions"),
                "N35",
                y_title="Count",
            ),
        ),
        tab_color="548235",
    )
    sheets = (
        SheetSpec(
            "Personas",
            "1. Audience segments and buyer personas",
            "Who your clients and customers are: their needs, pain points and preferences.",
            table=personas,
            tab_color="2F5597",
        ),
        SheetSpec(
            "Services",
            "2. Personalized services",
            "What you tailor for each persona.",
            table=services,
            tab_color="2F5597",
        ),
        SheetSpec(
            "Cadence",
            "3. Relationship cadence",
            "Touchpoints per account: channel, frequency, owner, next date. Overdue rows turn red.",
            table=cadence,
            tab_color="2F5597",
        ),
        SheetSpec(
            "Stories",
            "4. Client success stories",
            "Case studies and testimonials: who, what, the result, and permission to publish.",
            table=stories,
            tab_color="2F5597",
        ),
        SheetSpec(
            "Value-added",
            "5. Value-added services",
            "Workshops, webinars and educational content that help clients reach their goals.",
            table=value_added,
            tab_color="2F5597",
        ),
        dashboard,
        SheetSpec(
            "Lists",
            "Lists",
            "Drop-down choices you may edit: touchpoint frequencies and their days.",
            table=frequencies,
            landscape=False,
            freeze_first_column=False,
        ),
    )
    return TemplateSpec(
        key="client-strategy-plan",
        title="Client-centric strategy plan",
        subject="Segments, personas, personalized services, cadence, stories, value-added "
        "services and KPIs",
        description=(
            "A client-centric strategy plan following five steps: identify and segment your "
            "audience, provide personalized services, cultivate long-term relationships, "
            "showcase client success stories, offer value-added services; with a KPI dashboard."
        ),
        keywords="client-centric, personas, cadence, KPI",
        instructions=_plan_instructions(),
        sheets=sheets,
        main_sheet="Dashboard",
    )


def _plan_instructions() -> tuple[Para, ...]:
    return (
        Para("h1", "Client-centric strategy plan"),
        Para(
            "p",
            "One sheet per step of a client-centric approach, then a KPI dashboard that shows "
            "whether it works: clients and customers, retention, referrals and conversions.",
        ),
        Para("h2", "1. Personas: identify and segment your audience"),
        Para(
            "quote",
            "Conduct thorough research to identify your target audience and differentiate "
            "between potential clients and customers. Create buyer personas to gain a deeper "
            "understanding of their needs, pain points, and preferences.",
            S001,
        ),
        Para("h2", "2. Services: provide personalized services"),
        Para(
            "quote",
            "Once you’ve identified your clients, focus on delivering personalized and bespoke "
            "solutions. Understand their unique requirements and customize your offerings to "
            "exceed their expectations.",
            S001,
        ),
        Para("h2", "3. Cadence: cultivate long-term relationships"),
        Para(
            "quote",
            "Emphasize building long-term relationships with your clients by maintaining "
            "consistent communication, providing ongoing support, and showcasing your "
            "expertise and dedication.",
            S001,
        ),
        Para(
            "p",
            "Each touchpoint's next date is its last contact plus its frequency (days on the "
            "Lists sheet). Touchpoints past their next date, against the As of date on the "
            "Dashboard, are Overdue and turn red.",
        ),
        Para("h2", "4. Stories: showcase client success stories"),
        Para(
            "quote",
            "Leverage the power of case studies and testimonials to demonstrate your ability to "
            "deliver results and address clients’ challenges effectively.",
            S001,
        ),
        Para("h2", "5. Value-added: offer value-added services"),
        Para(
            "quote",
            "Go the extra mile by offering value-added services, such as workshops, webinars, or "
            "educational content, to further assist your clients in achieving their goals.",
            S001,
        ),
        Para("h2", "Dashboard"),
        Para(
            "p",
            "Fill one row per period (month or quarter) in the KPIs table: clients at the "
            "start, new and lost clients, customers, conversions and referrals. Clients at "
            "end, retention, client share and conversion rate are formulas; the charts show "
            "them over time.",
        ),
        Para(
            "quote",
            "As the bond strengthens, clients often become advocates, promoting the business "
            "through word-of-mouth and referrals.",
            S000,
        ),
        *LEGEND,
    )


# ------------------------------------------------------------------------------ conversion tracker
STAGES = (
    ("Customer", 1, "Buys now and then; no relationship yet."),
    ("Engaged", 2, "We know them and they know us: be friendly and personable."),
    ("Personalized", 3, "Gets a tailored offer built on their needs."),
    ("Regular contact", 4, "Consistent communication; a follow-up after every interaction."),
    (CLIENT, 5, "An ongoing, trusting relationship."),
    ("Lost", None, "Stopped buying or declined."),
)


def conversion_tracker_spec(rb: Rulebook, *, as_of: dt.date | None = None) -> TemplateSpec:
    """The customer-to-client conversion tracker (seed 002's steps), with a funnel summary."""
    tips = tuple(t for t in rb.tips if t.kind == "conversion")
    max_score = rb.settings.max_score
    conversions = TableSpec(
        "Conversions",
        (
            Column("Account", "text", 22, "One customer account a row."),
            Column(
                "Client score",
                "number",
                9,
                "Paste from the classifier (Score) or the batch tool (client_score).",
                minimum=rb.settings.min_score,
                maximum=max_score,
                number_format="0",
            ),
            Column(
                "Type",
                "formula",
                10,
                "Client when the score reaches the threshold.",
                formula=(
                    f'=IF({{Client score}}="","",IF({{Client score}}>=ClientThreshold,'
                    f"{fx.quote(CLIENT)},{fx.quote(CUSTOMER)}))"
                ),
                highlights=(
                    (f'{{Type}}="{CLIENT}"', "good"),
                    (f'{{Type}}="{CUSTOMER}"', "warn"),
                ),
            ),
            Column(
                "Points to client",
                "formula",
                9,
                "How many points the score is short of the threshold.",
                formula='=IF({Client score}="","",MAX(0,ClientThreshold-{Client score}))',
                number_format="0",
            ),
            Column(
                "Tip 1",
                "choice",
                28,
                "The conversion tip you act on first (from the rulebook; see Lists).",
                choices_from="{Tips.Tip}",
                wrap=True,
            ),
            Column(
                "Tip 2",
                "choice",
                28,
                "A second tip to act on.",
                choices_from="{Tips.Tip}",
                wrap=True,
            ),
            Column("Owner", "text", 14, "Who owns the conversion."),
            Column(
                "Stage",
                "choice",
                15,
                "Where the account stands (see Lists for what each stage means).",
                choices_from="{Stages.Stage}",
                highlights=((f'{{Stage}}="{CLIENT}"', "good"), ('{Stage}="Lost"', "muted")),
            ),
            Column(
                "Personable",
                "choice",
                11,
                "Be friendly and personable: do you know them, and they you?",
                choices=YES_NO,
            ),
            Column("Promises made", "whole", 9, "Promises made to this account so far."),
            Column(
                "Promises kept",
                "whole",
                9,
                "How many of them were kept (at most the promises made).",
                custom_rule=(
                    '=OR({Promises kept}="",AND(ISNUMBER({Promises kept}),'
                    "{Promises kept}>=0,{Promises kept}=INT({Promises kept}),"
                    "{Promises kept}<=N({Promises made})))"
                ),
            ),
            Column(
                "Kept %",
                "formula",
                8,
                "Promises kept / made.",
                formula=(
                    '=IF(OR({Promises made}="",{Promises made}=0),"",'
                    "MIN(1,N({Promises kept})/{Promises made}))"
                ),
                number_format="0%",
                highlights=(('AND({Kept %}<>"",N({Kept %})<1)', "warn"),),
            ),
            Column(
                "Response (hours)",
                "number",
                10,
                "Average time to get back to them, in hours.",
            ),
            Column(
                "Responsive",
                "formula",
                10,
                "Yes when the response time meets the target.",
                formula=(
                    '=IF({Response (hours)}="","",IF({Response (hours)}<=ResponseHours,"Yes","No"))'
                ),
                highlights=(('{Responsive}="No"', "warn"),),
            ),
            Column("Last interaction", "date", 12, "The last time you talked or they bought."),
            Column("Last follow-up", "date", 12, "The last time you followed up."),
            Column(
                "Followed up",
                "formula",
                10,
                "Yes when the last follow-up came after the last interaction.",
                formula=(
                    '=IF({Last interaction}="","",IF(AND({Last follow-up}<>"",'
                    '{Last follow-up}>={Last interaction}),"Yes","No"))'
                ),
                highlights=(('{Followed up}="No"', "warn"),),
            ),
            Column(
                "Next follow-up",
                "date",
                12,
                "Planned date; blank = last interaction + the follow-up days.",
                highlights=(
                    ('{Follow-up status}="Overdue"', "bad"),
                    ('{Follow-up status}="Due soon"', "warn"),
                ),
            ),
            Column(
                "Follow-up due",
                "formula",
                12,
                "The planned date, else last interaction + the follow-up days.",
                formula=(
                    '=IF({Next follow-up}<>"",{Next follow-up},IF({Last interaction}="","",'
                    "{Last interaction}+FollowUpDays))"
                ),
                number_format="yyyy-mm-dd",
                highlights=(
                    ('{Follow-up status}="Overdue"', "bad"),
                    ('{Follow-up status}="Due soon"', "warn"),
                ),
            ),
            Column(
                "Follow-up status",
                "formula",
                14,
                "Overdue, Due soon, Planned, Followed up or Closed.",
                formula=(
                    '=IF({Account}="","",IF(OR({Stage}="Client",{Stage}="Lost"),"Closed",'
                    'IF({Follow-up due}="","Plan a follow-up",'
                    'IF(AND({Next follow-up}="",{Followed up}="Yes"),"Followed up",'
                    'IF({Follow-up due}<INT(AsOfDate),"Overdue",'
                    'IF({Follow-up due}-INT(AsOfDate)<=2,"Due soon","Planned"))))))'
                ),
                highlights=(
                    ('{Follow-up status}="Overdue"', "bad"),
                    ('{Follow-up status}="Due soon"', "warn"),
                ),
            ),
            Column(
                "Steps done",
                "formula",
                8,
                "Of the four conversion steps: personable, promises kept, responsive, followed up.",
                formula=(
                    '=IF({Account}="","",IF({Personable}="Yes",1,0)'
                    "+IF(AND(N({Promises made})>0,N({Kept %})=1),1,0)"
                    '+IF({Responsive}="Yes",1,0)+IF({Followed up}="Yes",1,0))'
                ),
                number_format="0",
                databar=(0, 4),
            ),
            Column("Notes", "text", 22, "Anything else; 'Sample...' marks an example row."),
        ),
        rows=(
            {
                "Account": "Jamie Rivera",
                "Client score": 13,
                "Tip 1": tips[0].title if tips else None,
                "Tip 2": tips[1].title if len(tips) > 1 else None,
                "Owner": "Store team",
                "Stage": "Engaged",
                "Personable": "Yes",
                "Promises made": 2,
                "Promises kept": 2,
                "Response (hours)": 6,
                "Last interaction": dt.date(2025, 3, 1),
                "Last follow-up": dt.date(2025, 3, 3),
                "Notes": SAMPLE_NOTE,
            },
            {
                "Account": "Corner Café",
                "Client score": 22,
                "Tip 1": tips[2].title if len(tips) > 2 else None,
                "Owner": "Events team",
                "Stage": "Customer",
                "Personable": "No",
                "Promises made": 1,
                "Promises kept": 0,
                "Response (hours)": 48,
                "Last interaction": dt.date(2025, 2, 10),
                "Notes": SAMPLE_NOTE,
            },
            {
                "Account": "Northwind Apps Ltd",
                "Client score": 48,
                "Tip 1": tips[1].title if len(tips) > 1 else None,
                "Owner": "Account lead",
                "Stage": "Regular contact",
                "Personable": "Yes",
                "Promises made": 4,
                "Promises kept": 4,
                "Response (hours)": 4,
                "Last interaction": dt.date(2025, 3, 10),
                "Last follow-up": dt.date(2025, 3, 11),
                "Next follow-up": dt.date(2025, 4, 10),
                "Notes": SAMPLE_NOTE,
            },
        ),
        capacity=200,
    )
    funnel = TableSpec(
        "Funnel",
        (
            Column("Stage", "constant", 16),
            Column("Order", "constant", 7),
            Column(
                "Accounts",
                "formula",
                10,
                "Accounts now at this stage.",
                formula="=COUNTIF({Conversions.Stage},{Stage})",
                number_format="0",
                databar=(0, 10),
            ),
            Column(
                "At or beyond",
                "formula",
                11,
                "Accounts at this stage or a later one (the funnel).",
                formula=('=IF({Order}="","",SUMIF({Funnel.Order},">="&{Order},{Funnel.Accounts}))'),
                number_format="0",
            ),
            Column(
                "Share",
                "formula",
                9,
                "Share of the accounts tracked.",
                formula='=IF(TrackedAccounts=0,"",{Accounts}/TrackedAccounts)',
                number_format="0%",
            ),
        ),
        rows=tuple({"Stage": s, "Order": o} for s, o, _ in STAGES),
        capacity=len(STAGES),
    )
    stages = TableSpec(
        "Stages",
        (
            Column("Stage", "constant", 16),
            Column("Order", "constant", 7),
            Column("Meaning", "constant", 60, wrap=True),
        ),
        rows=tuple({"Stage": s, "Order": o, "Meaning": m} for s, o, m in STAGES),
        capacity=len(STAGES),
    )
    tip_table = TableSpec(
        "Tips",
        (
            Column("Tip", "constant", 36, wrap=True),
            Column("What to do", "constant", 70, wrap=True),
            Column("Source", "constant", 50, wrap=True),
        ),
        rows=tuple({"Tip": t.title, "What to do": t.text, "Source": t.source} for t in tips),
        capacity=max(len(tips), 1),
    )
    conv = "{Conversions.Follow-up status}"
    tracker = SheetSpec(
        "Tracker",
        "Customer-to-client conversion tracker",
        "One row per customer account: its score and type, the tips you act on, and the four "
        "steps: be personable, keep promises, be responsive, follow up after every interaction.",
        cells=(
            NamedCell(
                fx.AS_OF,
                "As of",
                as_of if as_of is not None else "=TODAY()",
                "date",
                "The date follow-ups are judged against (default: today).",
            ),
            NamedCell(
                "ClientThreshold",
                "Client threshold",
                rb.settings.threshold,
                "number",
                "The score at which an account counts as a client (the rulebook's).",
                number_format="0",
            ),
            NamedCell(
                "FollowUpDays",
                "Follow up within (days)",
                7,
                "whole",
                "Follow up within this many days of every interaction.",
            ),
            NamedCell(
                "ResponseHours",
                "Response target (hours)",
                24,
                "number",
                "Get back to customers within this many hours.",
                number_format="0",
            ),
        ),
        table=conversions,
        tab_color="C55A11",
    )
    summary = SheetSpec(
        "Summary",
        "Conversion summary",
        "Funnel counts and the four steps across all tracked accounts.",
        cells=(
            NamedCell(
                "TrackedAccounts",
                "Accounts tracked",
                "=COUNTA({Conversions.Account})",
                number_format="0",
            ),
            NamedCell(
                "ConvertedAccounts",
                "Converted to client",
                '=COUNTIF({Conversions.Stage},"Client")',
                number_format="0",
            ),
            NamedCell(
                "ConversionRate",
                "Conversion rate",
                '=IF(TrackedAccounts=0,"",ConvertedAccounts/TrackedAccounts)',
                number_format="0%",
            ),
            NamedCell(
                "OverdueFollowUps",
                "Follow-ups overdue",
                f'=COUNTIF({conv},"Overdue")',
                number_format="0",
            ),
            NamedCell(
                "PromisesKept",
                "Promises kept",
                '=IF(SUM({Conversions.Promises made})=0,"",'
                "SUM({Conversions.Promises kept})/SUM({Conversions.Promises made}))",
                number_format="0%",
            ),
            NamedCell(
                "AverageResponse",
                "Average response (hours)",
                '=IF(COUNT({Conversions.Response (hours)})=0,"",'
                "AVERAGE({Conversions.Response (hours)}))",
                number_format="0.0",
            ),
            NamedCell(
                "FollowedUpShare",
                "Followed up after last interaction",
                '=IF(COUNTIF({Conversions.Followed up},"Yes")'
                '+COUNTIF({Conversions.Followed up},"No")=0,"",'
                'COUNTIF({Conversions.Followed up},"Yes")/'
                '(COUNTIF({Conversions.Followed up},"Yes")'
                '+COUNTIF({Conversions.Followed up},"No")))',
                number_format="0%",
            ),
        ),
        table=funnel,
        charts=(
            ChartSpec(
                "bar",
                "Conversion funnel: accounts at or beyond each stage",
                "Funnel",
                "Stage",
                ("At or beyond",),
                "H3",
                rows=len(STAGES) - 1,
                y_title="Accounts",
            ),
        ),
        freeze_first_column=False,
        tab_color="548235",
    )
    lists = SheetSpec(
        "Lists",
        "Stages and tips",
        "The stage drop-down and the conversion tips (from the rulebook).",
        table=stages,
        freeze_first_column=False,
    )
    tips_sheet = SheetSpec(
        "Tips",
        "Conversion tips (from the rulebook)",
        "The Tip 1 / Tip 2 drop-downs; each tip cites the article it comes from.",
        table=tip_table,
        freeze_first_column=False,
    )
    return TemplateSpec(
        key="conversion-tracker",
        title="Customer-to-client conversion tracker",
        subject="Turn customers into clients: be personable, keep promises, be responsive, "
        "follow up",
        description=(
            "One row per customer account with its score, type, chosen tips, owner, promises, "
            "response time and follow-ups; a funnel summary with a chart."
        ),
        keywords="conversion, customer, client, follow-up, funnel",
        instructions=_tracker_instructions(),
        sheets=(tracker, summary, lists, tips_sheet),
        main_sheet="Tracker",
    )


def _tracker_instructions() -> tuple[Para, ...]:
    return (
        Para("h1", "Customer-to-client conversion tracker"),
        Para(
            "p",
            "Track each customer you want to turn into a client: its score and type (from the "
            "account classifier or the batch tool), the tips you act on, and the four steps.",
        ),
        Para("h2", "The four steps"),
        Para(
            "quote",
            "-Be friendly and personable. Get to know your customers and let them get to know you.",
            S002,
        ),
        Para(
            "quote",
            "-Keep your promises. If you say you’re going to do something, make sure you follow "
            "through.",
            S002,
        ),
        Para(
            "quote",
            "-Be responsive. When customers reach out, whether it’s with questions or feedback, "
            "make sure you get back to them promptly.",
            S002,
        ),
        Para(
            "quote",
            "-Follow up. After every interaction, follow up with the customer to see how they’re "
            "doing and if there’s anything else you can do for them.",
            S002,
        ),
        Para("h2", "How to use it"),
        Para(
            "step",
            "Paste accounts with their Client score (the classifier's Score column, or "
            "client_score from 'relationship classify'). Type and Points to client follow "
            "from the Client threshold at the top.",
        ),
        Para("step", "Pick one or two tips (the rulebook's conversion tips, on the Tips sheet)."),
        Para(
            "step",
            "Record promises made and kept, your average response time, the last interaction "
            "and the last follow-up. A follow-up is due the number of days set at the top "
            "after every interaction, unless you plan a Next follow-up; overdue ones turn red.",
        ),
        Para(
            "step",
            "Move the Stage along: Customer, Engaged, Personalized, Regular contact, Client "
            "(or Lost). The Summary sheet counts the funnel.",
        ),
        Para("h2", "Where the stages come from"),
        Para(
            "quote",
            "Clients require a deeper level of engagement compared to customers.",
            S000,
        ),
        Para(
            "quote",
            "With clients, personalization is essential in tailoring services to meet their "
            "specific needs.",
            S000,
        ),
        Para(
            "quote",
            "However, maintaining consistent and regular communication is crucial for clients, "
            "as it demonstrates the business's commitment to their success.",
            S000,
        ),
        *LEGEND,
    )
