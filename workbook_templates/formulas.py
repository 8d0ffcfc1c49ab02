"""Plain spreadsheet formulas that classify like the engine, generated from the rulebook.

The rulebook's *structure* (which signals exist, on which field, with which test, and which
buyer rules) decides which formulas are written; every *number, keyword, synonym, vocabulary
value, weight and suppression link* is read from the workbook's ``Rules`` sheet, so editing
that sheet changes the results. Adding a signal or a field needs a rebuilt template (the
``Scoring`` sheet's check says so).

Three layers, each one hidden column per field or per signal in the ``Accounts`` table:

* ``val <field>`` the value as the engine reads it: padded text `` " law firm " ``, the
  canonical category value (``tailored``), a number (``-1`` when missing, unreadable or
  negative) or a date serial (``-1`` when missing); ``fold <field>`` holds the folded text a
  category is looked up with.
* ``sig <id>`` 1 when the signal (or buyer rule) fires, else 0.
* ``pts <id>`` the signal's weight when it fires and no signal named in its ``links``
  (suppressed_by) fires.

``Score (formula)`` = MIN(max_score, MAX(min_score, base + SUM(pts))) and ``Type (formula)``
compares it with the threshold, exactly as :func:`relationships.engine.classify`.

Only functions of Excel 2016, LibreOffice 7.4 and Google Sheets are used (SUMPRODUCT over
SEARCH, SUMIFS, INDEX, FIND, VALUE...), never LET, LAMBDA, XLOOKUP, FILTER, TEXTJOIN, IFS and
the like, and no structured references: :func:`portability_problems` checks a formula.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from openpyxl.utils import get_column_letter

from relationships.engine import CLIENT, CUSTOMER, UNKNOWN_BUYER
from relationships.rulebook import SHEET_NAME, BuyerRule, Rulebook, Signal, rulebook_to_rows

# Functions newer than Excel 2016 (or missing from LibreOffice 7.4 / Google Sheets).
FORBIDDEN_FUNCTIONS = (
    "LET",
    "LAMBDA",
    "XLOOKUP",
    "XMATCH",
    "FILTER",
    "UNIQUE",
    "SEQUENCE",
    "SORT",
    "SORTBY",
    "RANDARRAY",
    "TEXTJOIN",
    "CONCAT",
    "IFS",
    "SWITCH",
    "MAXIFS",
    "MINIFS",
    "TEXTSPLIT",
    "TEXTBEFORE",
    "TEXTAFTER",
    "VSTACK",
    "HSTACK",
    "TOCOL",
    "TOROW",
    "TAKE",
    "DROP",
    "CHOOSECOLS",
    "CHOOSEROWS",
    "EXPAND",
    "WRAPROWS",
    "WRAPCOLS",
    "ARRAYTOTEXT",
    "VALUETOTEXT",
    "ANCHORARRAY",
    "SINGLE",
    "BYROW",
    "BYCOL",
    "MAP",
    "REDUCE",
    "SCAN",
    "MAKEARRAY",
    "REGEXMATCH",
    "REGEXEXTRACT",
    "REGEXREPLACE",
)
# The add-in's worksheet functions (xlwings UDFs): #NAME? wherever the add-in is not loaded.
ADDIN_FUNCTIONS = ("RELATIONSHIP_TYPE", "CLIENT_SCORE", "CONVERSION_TIPS")

_STRING = re.compile(r'"(?:[^"]|"")*"')
_CALL = re.compile(r"(?<![A-Za-z0-9_.])([A-Za-z_][A-Za-z0-9_.]*)\s*\(")

# Named cells on the Scoring sheet, each read from a setting row of the Rules sheet.
SETTING_NAMES = {
    "ScoreBase": "base",
    "ScoreThreshold": "threshold",
    "ScoreMin": "min_score",
    "ScoreMax": "max_score",
    "MaxTips": "max_tips",
}
AS_OF = "AsOfDate"
RULES_TABLE = "RulesTable"
SCORING_SHEET = "Scoring"


def functions_used(formula: str) -> set[str]:
    """Upper-cased names of the functions a formula calls (string literals ignored)."""
    names = (m.group(1).upper() for m in _CALL.finditer(_STRING.sub('""', formula)))
    return {re.sub(r"^_XL(FN|WS)\.", "", n) for n in names}


def portability_problems(formula: str, *, plain: bool = True) -> list[str]:
    """Why a formula would not work in Excel 2016, LibreOffice 7.4 or Google Sheets.

    ``plain`` formulas must also avoid structured table references (``Table[Column]``),
    which Google Sheets and older tools do not read.
    """
    code = _STRING.sub('""', formula)
    problems = []
    used = functions_used(formula)
    for name in sorted(used & set(FORBIDDEN_FUNCTIONS)):
        problems.append(f"uses {name}, which Excel 2016 / LibreOffice 7.4 / Google Sheets lack")
    if "_XLFN." in code.upper() or "_XLWS." in code.upper():
        problems.append("uses a function Excel marks as newer (_xlfn.)")
    if plain:
        if "[" in code or "]" in code:
            problems.append("uses a structured table reference")
        if "@" in code:
            problems.append("uses the implicit-intersection operator @")
        for name in sorted(used & set(ADDIN_FUNCTIONS)):
            problems.append(f"calls the add-in function {name}")
    return problems


def quote(text: str) -> str:
    """A spreadsheet string literal."""
    return '"' + text.replace('"', '""') + '"'


# ------------------------------------------------------------------------------ layout
RULES_COLUMN_NAMES = {
    "A": "RulesSection",
    "B": "RulesId",
    "C": "RulesField",
    "D": "RulesTest",
    "E": "RulesValue",
    "F": "RulesWeight",
    "G": "RulesText",
    "H": "RulesLinks",
}


@dataclass(frozen=True)
class RulesRef:
    """Whole fixed ranges over the Rules sheet (row 2 down), long enough for added rows.

    Each column is a workbook name (``RulesSection`` = Rules!$A$2:$A$2000 ...), which keeps
    the formulas short and readable.
    """

    last_row: int
    sheet: str = SHEET_NAME

    def col(self, letter: str) -> str:
        """The name of one column's data rows, for SUMPRODUCT and SUMIFS."""
        return RULES_COLUMN_NAMES[letter]

    def at(self, letter: str, sheet_row: str) -> str:
        """The cell of a column in a given sheet row (an expression)."""
        return f"INDEX({self.col(letter)},{sheet_row}-1)"

    def names(self) -> dict[str, str]:
        """Workbook names to define: one per column, and the whole table."""
        out = {
            name: f"{self.sheet}!${letter}$2:${letter}${self.last_row}"
            for letter, name in RULES_COLUMN_NAMES.items()
        }
        out[RULES_TABLE] = self.table
        return out

    @property
    def table(self) -> str:
        return f"{self.sheet}!$A$1:$I${self.last_row}"


def rules_ref(rb: Rulebook) -> RulesRef:
    """At least 2000 rows, and room to double the rulebook's rows."""
    rows = len(rulebook_to_rows(rb))
    return RulesRef(max(2000, math.ceil(rows * 2 / 1000) * 1000))


@dataclass(frozen=True)
class ScoringLayout:
    """Where the Scoring sheet keeps each signal's and buyer rule's parameters."""

    signals: tuple[str, ...]
    buyer_rules: tuple[str, ...]
    settings_row: int = 4  # first setting (one per row, value in column B)
    check_row: int = 10  # "rules in step" cell (B)
    signal_header_row: int = 13

    # columns of the signal and buyer-rule blocks
    ID, FIELD, TEST, ROW, VALUE, THRESHOLD, WEIGHT, LINKS, CHECK = "ABCDEFGHI"
    BUYER_TYPE = "G"  # in the buyer-rule block, column G holds the buyer type
    MATRIX_FIRST_COL = 10  # J: one column per signal: 1 when the row's signal is suppressed by it

    @property
    def first_signal_row(self) -> int:
        return self.signal_header_row + 1

    @property
    def last_signal_row(self) -> int:
        return self.first_signal_row + max(len(self.signals), 1) - 1

    @property
    def buyer_header_row(self) -> int:
        return self.last_signal_row + 3

    @property
    def first_buyer_row(self) -> int:
        return self.buyer_header_row + 1

    @property
    def last_buyer_row(self) -> int:
        return self.first_buyer_row + max(len(self.buyer_rules), 1) - 1

    def setting_row(self, name: str) -> int:
        return self.settings_row + list(SETTING_NAMES).index(name)

    def signal_row(self, sid: str) -> int:
        return self.first_signal_row + self.signals.index(sid)

    def buyer_row(self, bid: str) -> int:
        return self.first_buyer_row + self.buyer_rules.index(bid)

    def row_of(self, rid: str) -> int:
        return self.signal_row(rid) if rid in self.signals else self.buyer_row(rid)

    def cell(self, column: str, rid: str) -> str:
        return f"{SCORING_SHEET}!${column}${self.row_of(rid)}"

    def matrix_col(self, index: int) -> str:
        return get_column_letter(self.MATRIX_FIRST_COL + index)

    def link_row(self, sid: str) -> str:
        row = self.signal_row(sid)
        first, last = self.matrix_col(0), self.matrix_col(len(self.signals) - 1)
        return f"{SCORING_SHEET}!${first}${row}:${last}${row}"


def scoring_layout(rb: Rulebook) -> ScoringLayout:
    return ScoringLayout(tuple(s.id for s in rb.signals), tuple(b.id for b in rb.buyer_rules))


# ------------------------------------------------------------------------------ Scoring sheet
def scoring_setting_formula(setting: str, rules: RulesRef) -> str:
    return f'=SUMIFS({rules.col("E")},{rules.col("A")},"setting",{rules.col("B")},{quote(setting)})'


def scoring_row_formulas(
    section: str, row: int, rules: RulesRef, layout: ScoringLayout
) -> dict[str, str]:
    """Formulas of one signal (section 'signal') or buyer rule row on the Scoring sheet."""
    L = layout
    rid = f"${L.ID}{row}"
    at = f"${L.ROW}{row}"
    formulas = {
        L.ROW: (
            f"=SUMPRODUCT(({rules.col('A')}={quote(section)})*({rules.col('B')}={rid})"
            f"*ROW({rules.col('A')}))"
        ),
        L.VALUE: f'=IF({at}=0,"",{rules.at("E", at)}&"")',
        L.THRESHOLD: (
            f"=SUMIFS({rules.col('E')},{rules.col('A')},{quote(section)},{rules.col('B')},{rid})"
        ),
        L.CHECK: (
            f'=IF({at}=0,"removed",IF(AND({rules.at("C", at)}=${L.FIELD}{row},'
            f'{rules.at("D", at)}=${L.TEST}{row}),"ok","changed: rebuild"))'
        ),
    }
    if section == "signal":
        formulas[L.WEIGHT] = (
            f'=SUMIFS({rules.col("F")},{rules.col("A")},"signal",{rules.col("B")},{rid})'
        )
        formulas[L.LINKS] = f'=IF({at}=0,"",{rules.at("H", at)}&"")'
    else:
        formulas[L.BUYER_TYPE] = f'=IF({at}=0,"",{rules.at("G", at)}&"")'
    return formulas


def link_formula(row: int, col: str, layout: ScoringLayout) -> str:
    """1 when the signal named in this column's header is listed in the row's links."""
    head = f"{col}${layout.signal_header_row}"
    links = f"${layout.LINKS}{row}"
    return f'=IF(ISNUMBER(FIND(","&{head}&",",","&SUBSTITUTE({links}," ","")&",")),1,0)'


def rules_check_formula(rules: RulesRef, layout: ScoringLayout) -> str:
    """A status text: are all signal and buyer-rule rows of the Rules sheet known here?"""
    ids = (
        f"{SCORING_SHEET}!${layout.ID}${layout.first_signal_row}:"
        f"${layout.ID}${layout.last_buyer_row}"
    )
    checks = (
        f"{SCORING_SHEET}!${layout.CHECK}${layout.first_signal_row}:"
        f"${layout.CHECK}${layout.last_buyer_row}"
    )
    section = rules.col("A")
    rules_rows = f'(({section}="signal")+({section}="buyer_rule"))'
    unknown = f"SUMPRODUCT({rules_rows}*(COUNTIF({ids},{rules.col('B')})=0))"
    return (
        f'=IF({unknown}>0,"Rebuild the template: the Rules sheet has signals it does not know",'
        f'IF(COUNTIF({checks},"changed*")>0,"Rebuild the template: a signal changed its '
        f'field or test","In step with the Rules sheet"))'
    )


# ------------------------------------------------------------------------------ Accounts
@dataclass(frozen=True)
class FormulaColumn:
    """A computed column of the Accounts table: ``{Header}`` = that column's cell in the row."""

    header: str
    formula: str
    helper: bool  # hidden in the collapsed column group
    kind: str = "formula"  # "formula" or "addin"
    help: str = ""


def val_header(field: str) -> str:
    return f"val {field}"


def fold_header(field: str) -> str:
    return f"fold {field}"


def parse_header(field: str) -> str:
    return f"parse {field}"


def sig_header(rid: str) -> str:
    return f"sig {rid}"


def pts_header(sid: str) -> str:
    return f"pts {sid}"


TYPE_FORMULA = "Type (formula)"
SCORE_FORMULA = "Score (formula)"
BUYER_FORMULA = "Buyer type (formula)"
TYPE_ADDIN = "Type (add-in)"
SCORE_ADDIN = "Score (add-in)"
TIPS_ADDIN = "Tips (add-in)"


def _text_value(cell: str) -> str:
    """Padded text for keyword search: like the engine's ' ' + text.lower() + ' '."""
    return (
        f'=IF(ISERROR({cell}),"",IF(ISLOGICAL({cell}),IF({cell}," true "," false "),'
        f'IF(TRIM({cell})="",""," "&{cell}&" ")))'
    )


def _folded(cell: str) -> str:
    """A category cell folded like the engine's fold_value (TRIM(LOWER(x)))."""
    return (
        f'=IF(ISERROR({cell}),"",IF(ISLOGICAL({cell}),IF({cell},"true","false"),'
        f"TRIM(LOWER({cell}))))"
    )


def _category_value(field: str, fold: str, rules: RulesRef) -> str:
    """The canonical vocabulary value whose synonym equals the folded cell ('' if none)."""
    match = (
        f'SUMPRODUCT(({rules.col("A")}="synonym")*({rules.col("C")}={quote(field)})'
        f"*(TRIM(LOWER({rules.col('E')}))={fold})*ROW({rules.col('A')}))"
    )
    return f'=IF({fold}="","",IF({match}=0,"",{rules.at("B", match)}))'


def _bad_number_text(t: str) -> str:
    """Text VALUE() reads but the engine does not: dates, times, percents, currency."""
    return (
        f'OR(ISNUMBER(FIND("/",{t})),ISNUMBER(FIND(":",{t})),ISNUMBER(FIND("%",{t})),'
        f'ISNUMBER(FIND("$",{t})),ISNUMBER(FIND("-",{t},2)),ISNUMBER(FIND(" ",{t})))'
    )


def _number_value(cell: str) -> str:
    """The engine's number: >= 0, numeric text read; -1 when missing, unreadable or < 0."""
    t = f"TRIM({cell})"
    v = f"VALUE({t})"
    return (
        f"=IF(ISERROR({cell}),-1,IF(ISLOGICAL({cell}),-1,IF(ISNUMBER({cell}),"
        f'IF({cell}>=0,{cell},-1),IF({t}="",-1,IF({_bad_number_text(t)},-1,'
        f"IF(ISERROR({v}),-1,IF({v}>=0,{v},-1)))))))"
    )


def _date_value(cell: str) -> str:
    """A date serial as the engine reads it: date cells, serial numbers, ISO-like text.

    Text is a date when its 5th character is -, / or . (yyyy-mm-dd, with an optional time
    after a space or T) or when it is a plain serial number; -1 when missing or unreadable.
    """
    t = f"TRIM({cell})"
    first_space = f'FIND(" ",SUBSTITUTE({t},"T"," ")&" ")'
    iso = f'SUBSTITUTE(SUBSTITUTE(LEFT({t},{first_space}-1),"/","-"),".","-")'
    sep = f"MID({t},5,1)"
    is_iso = f'OR({sep}="-",{sep}="/",{sep}=".")'
    serial = (
        f"IF({_bad_number_text(t)},-1,IF(ISERROR(VALUE({t})),-1,"
        f"IF(AND(VALUE({t})>=1,VALUE({t})<2958466),INT(VALUE({t})),-1)))"
    )
    from_iso = f"IF(ISERROR(VALUE({iso})),-1,INT(VALUE({iso})))"
    return (
        f"=IF(ISERROR({cell}),-1,IF(ISLOGICAL({cell}),-1,IF(ISNUMBER({cell}),"
        f'IF(AND({cell}>=1,{cell}<2958466),INT({cell}),-1),IF({t}="",-1,'
        f"IF({is_iso},{from_iso},{serial})))))"
    )


def _months_fallback(number: str, since: str) -> str:
    """relationship_months, or whole months from customer_since to the as-of date."""
    a = AS_OF
    months = f"(YEAR({a})-YEAR({since}))*12+MONTH({a})-MONTH({since})-IF(DAY({a})<DAY({since}),1,0)"
    return f"=IF({number}>=0,{number},IF(AND({since}>=1,{since}<=INT({a})),{months},-1))"


def _fired(rule: Signal | BuyerRule, value: str, rules: RulesRef, layout: ScoringLayout) -> str:
    present = f"{layout.cell(layout.ROW, rule.id)}=0"
    if rule.test == "contains_any":
        hits = (
            f'SUMPRODUCT(({rules.col("A")}="keyword")*({rules.col("B")}={quote(rule.id)})'
            f"*ISNUMBER(SEARCH({rules.col('E')},{value})))"
        )
        return f'=IF(OR({present},{value}=""),0,IF({hits}>0,1,0))'
    if rule.test == "is":
        return (
            f'=IF(OR({present},{value}=""),0,IF({value}={layout.cell(layout.VALUE, rule.id)},1,0))'
        )
    op = ">=" if rule.test == "at_least" else "<"
    threshold = layout.cell(layout.THRESHOLD, rule.id)
    return f"=IF(OR({present},{value}<0),0,IF({value}{op}{threshold},1,0))"


def classifier_formula_columns(
    rb: Rulebook,
    input_headers: dict[str, str],
    rules: RulesRef,
    layout: ScoringLayout,
    *,
    table: str,
) -> list[FormulaColumn]:
    """Result columns (visible) then helper columns (hidden) of the Accounts table.

    ``input_headers`` maps each rulebook field to its column header, in column order.
    """
    kinds = {f.name: f.kind for f in rb.fields}
    first_input, last_input = (
        f"{{{next(iter(input_headers.values()))}}}",
        f"{{{list(input_headers.values())[-1]}}}",
    )
    blank_row = f"COUNTA({first_input}:{last_input})=0"

    def h(field: str) -> str:
        return f"{{{input_headers[field]}}}"

    helpers: list[FormulaColumn] = []
    value_of: dict[str, str] = {}  # field -> placeholder of its val column
    used = [s.field for s in rb.signals] + [b.field for b in rb.buyer_rules]
    derive_months = "customer_since" in input_headers and "relationship_months" in input_headers
    for field in input_headers:
        if field not in used and not (field == "customer_since" and derive_months):
            continue
        kind = kinds[field]
        if kind == "text":
            helpers.append(FormulaColumn(val_header(field), _text_value(h(field)), True))
        elif kind == "category":
            helpers.append(FormulaColumn(fold_header(field), _folded(h(field)), True))
            helpers.append(
                FormulaColumn(
                    val_header(field),
                    _category_value(field, f"{{{fold_header(field)}}}", rules),
                    True,
                )
            )
        elif kind == "date":
            helpers.append(FormulaColumn(val_header(field), _date_value(h(field)), True))
        elif field == "relationship_months" and derive_months:
            helpers.append(FormulaColumn(parse_header(field), _number_value(h(field)), True))
        else:
            helpers.append(FormulaColumn(val_header(field), _number_value(h(field)), True))
        value_of[field] = f"{{{val_header(field)}}}"
    if derive_months:
        helpers.append(
            FormulaColumn(
                val_header("relationship_months"),
                _months_fallback(
                    f"{{{parse_header('relationship_months')}}}",
                    f"{{{val_header('customer_since')}}}",
                ),
                True,
            )
        )
        value_of["relationship_months"] = f"{{{val_header('relationship_months')}}}"

    # Fields a signal names but the sheet lacks (cannot happen with the built-in columns).
    missing = sorted({f for f in used if f not in value_of})
    if missing:
        raise ValueError(f"no input column for field(s) {', '.join(missing)}")

    for s in rb.signals:
        helpers.append(
            FormulaColumn(sig_header(s.id), _fired(s, value_of[s.field], rules, layout), True)
        )
    for b in rb.buyer_rules:
        helpers.append(
            FormulaColumn(sig_header(b.id), _fired(b, value_of[b.field], rules, layout), True)
        )
    if rb.signals:
        first_sig = f"{{{sig_header(rb.signals[0].id)}}}"
        last_sig = f"{{{sig_header(rb.signals[-1].id)}}}"
        for s in rb.signals:
            suppressed = f"SUMPRODUCT({layout.link_row(s.id)},{first_sig}:{last_sig})>0"
            helpers.append(
                FormulaColumn(
                    pts_header(s.id),
                    f"=IF({{{sig_header(s.id)}}}=0,0,IF({suppressed},0,"
                    f"{layout.cell(layout.WEIGHT, s.id)}))",
                    True,
                )
            )
        points = f"SUM({{{pts_header(rb.signals[0].id)}}}:{{{pts_header(rb.signals[-1].id)}}})"
    else:
        points = "0"

    score = f"{{{SCORE_FORMULA}}}"
    buyer = quote(UNKNOWN_BUYER)
    for b in reversed(rb.buyer_rules):
        buyer = f"IF({{{sig_header(b.id)}}}=1,{layout.cell(layout.BUYER_TYPE, b.id)},{buyer})"
    rows_ref = f"{table}[[#This Row],[{_escape_col(next(iter(input_headers.values())))}]:" + (
        f"[{_escape_col(list(input_headers.values())[-1])}]]"
    )
    heads_ref = f"{table}[[#Headers],[{_escape_col(next(iter(input_headers.values())))}]:" + (
        f"[{_escape_col(list(input_headers.values())[-1])}]]"
    )
    results = [
        FormulaColumn(
            TYPE_FORMULA,
            f'=IF({score}="","",IF({score}>=ScoreThreshold,{quote(CLIENT)},{quote(CUSTOMER)}))',
            False,
            help="Client or Customer, by plain formulas over the Rules sheet.",
        ),
        FormulaColumn(
            SCORE_FORMULA,
            f'=IF({blank_row},"",MIN(ScoreMax,MAX(ScoreMin,ScoreBase+{points})))',
            False,
            help="Client score 0-100, by plain formulas over the Rules sheet.",
        ),
        FormulaColumn(
            BUYER_FORMULA,
            f'=IF({blank_row},"",{buyer})',
            False,
            help="Consumer, Business or Unknown, by plain formulas over the Rules sheet.",
        ),
        FormulaColumn(
            TYPE_ADDIN,
            f'=IF({blank_row},"",RELATIONSHIP_TYPE({rows_ref},{heads_ref},{RULES_TABLE}))',
            False,
            kind="addin",
            help="Client or Customer from the add-in (needs the add-in's functions).",
        ),
        FormulaColumn(
            SCORE_ADDIN,
            f'=IF({blank_row},"",CLIENT_SCORE({rows_ref},{heads_ref},{RULES_TABLE}))',
            False,
            kind="addin",
            help="Client score from the add-in (needs the add-in's functions).",
        ),
        FormulaColumn(
            TIPS_ADDIN,
            f'=IF({blank_row},"",CONVERSION_TIPS({rows_ref},{heads_ref},MaxTips,{RULES_TABLE}))',
            False,
            kind="addin",
            help="How to turn this customer into a client (needs the add-in's functions).",
        ),
    ]
    return results + helpers


def _escape_col(header: str) -> str:
    """A column name inside a structured reference: escape ' [ ] # with an apostrophe."""
    return re.sub(r"(['\[\]#])", r"'\1", header)


def render(template: str, letters: dict[str, str], row: int, ranges: dict[str, str]) -> str:
    """Fill a column formula for one row: ``{Header}`` -> cell, ``{Table.Header}`` -> range."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key == "r":
            return str(row)
        if key in letters:
            return f"{letters[key]}{row}"
        if key in ranges:
            return ranges[key]
        raise KeyError(f"unknown column {key!r} in formula {template!r}")

    return re.sub(r"\{([^{}]+)\}", sub, template)
