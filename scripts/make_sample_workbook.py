"""Generate the bundled demo workbook: about 500 accounts written the way analysts write.

    .venv/bin/python scripts/make_sample_workbook.py [--out addin/data/sample_accounts.xlsx]

Reproducible: a fixed seed, fixed dates and fixed document properties, so running it again
gives the same cells. The workbook has an "Accounts" sheet with mixed header spellings,
free-text values and a few unreadable cells, a "Regions" sheet of formulas over the
accounts with a chart, and an "About" sheet, so the demo exercises what real files hold.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
from pathlib import Path

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.table import Table, TableStyleInfo

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "addin" / "data" / "sample_accounts.xlsx"
HEADERS = [
    "Account Name",
    "Industry",
    "Service type",
    "Billing",
    "Client since",
    "Orders/yr",
    "Personalisation",
    "Needs advice?",
    "Touchpoints per month",
    "B2C?",
    "Days to decide",
    "Price or value",
    "# of referrals",
    "Region",
    "Owner",
    "Notes",
]
REGIONS = ["North", "South", "East", "West"]
OWNERS = ["A. Khan", "B. Lopez", "C. Meyer", "D. Osei", "E. Tanaka"]

# Business archetypes after the seeds: (industry spellings, client-based?,
# offerings and billing of client-like accounts, offerings and billing of customer-like ones)
ARCHETYPES = [
    (
        ["Law firm", "Law Firm", "law practice", "Legal services"],
        True,
        ["Commercial litigation", "Contract review", "Estate planning", "Employment law advice"],
        ["Monthly retainer", "Hourly", "Fixed fee", "hourly billing"],
        ["Notarized copy", "Document template"],
        ["One-time purchase", "Card payment"],
    ),
    (
        ["Design studio", "Boutique design studio", "Web design agency"],
        True,
        ["Brand identity design", "Website redesign", "Packaging design"],
        ["Per project", "Fixed fee", "Retainer"],
        ["Logo template", "Existing website template"],
        ["One-off", "Card payment"],
    ),
    (
        ["Insurance agency", "Insurance brokerage", "insurance broker"],
        True,
        ["Commercial risk advisory", "Coverage review", "Claims advocacy"],
        ["Annual retainer", "Commission", "Advisory fee"],
        ["Car insurance policy", "Travel insurance"],
        ["Annual premium", "Monthly premium"],
    ),
    (
        ["Accounting firm", "Accountants", "CPA firm", "Bookkeeping service"],
        True,
        ["Tax advice", "Bookkeeping", "Audit", "Payroll service", "Personal tax return"],
        ["Hourly", "Monthly retainer", "Fixed fee", "Fixed-fee engagement"],
        ["Tax software download", "Ready-made forms"],
        ["One-time purchase", "Per order"],
    ),
    (
        ["Real estate agency", "Realtor", "Real Estate"],
        True,
        ["Buyer representation", "Property search", "Listing service", "Valuation"],
        ["Commission", "Success fee", "Fixed fee"],
        ["Listing ad", "Moving boxes"],
        ["One-time purchase", "Card payment"],
    ),
    (
        ["Marketing agency", "Advertising agency", "Digital marketing agency"],
        True,
        ["Campaign strategy", "Media buying", "SEO retainer", "Brand strategy workshop"],
        ["Monthly retainer", "Retainer", "Per project", "Time and materials"],
        ["Template pack", "Stock images"],
        ["One-off", "Monthly subscription"],
    ),
    (
        ["Management consultancy", "Consulting", "IT consulting firm"],
        True,
        ["Operations consulting", "Strategy advisory", "Implementation", "Due diligence"],
        ["Time and materials", "Day rate", "Fixed price project", "Retainer"],
        ["Report download", "Training video"],
        ["One-time purchase", "Card payment"],
    ),
    (
        ["SaaS", "SaaS (B2B)", "Software as a Service", "Cloud software"],
        False,
        [
            "Software subscription plus implementation consulting",
            "Onboarding service",
            "Custom integration",
        ],
        ["Fixed fee", "Per project", "Annual subscription"],
        ["Software subscription", "Dashboard seats", "Premium plan"],
        ["Monthly subscription", "Annual subscription", "Per user per month"],
    ),
    (
        ["Retail store", "Online shop", "Retailer", "e-commerce"],
        False,
        ["Personal shopping advice", "Interior design consultation"],
        ["Fixed fee", "Hourly"],
        ["Running shoes", "Clothing", "Electronics", "Furniture", "Gift card"],
        ["One-time purchase", "Card payment", "Point of sale", "Cash"],
    ),
    (
        ["Subscription box", "Streaming service", "Meal kit subscription"],
        False,
        ["Nutrition coaching"],
        ["Monthly retainer"],
        ["Monthly snack box", "Premium plan", "Meal kit", "Standard plan"],
        ["Monthly subscription", "Annual membership", "Auto-renew"],
    ),
    (
        ["Bank", "Community bank", "Credit union"],
        False,
        ["Wealth management advisory", "Financial planning"],
        ["Advisory fee", "Retainer"],
        ["Checking account", "Savings account", "Business credit card", "Mortgage"],
        ["Monthly account fee", "Annual fee", "No fee"],
    ),
    (
        ["Restaurant", "Cafe", "Bakery", "Catering"],
        False,
        ["Event menu design"],
        ["Per project"],
        ["Dinner", "Lunch", "Coffee", "Catering for staff party"],
        ["Cash", "Card payment", "Per order"],
    ),
    (
        ["Amusement park", "Theme park", "Water park"],
        False,
        ["Corporate event planning"],
        ["Fixed fee"],
        ["Season pass", "Day tickets", "Group admission"],
        ["Annual pass", "Pay at the gate", "One-time purchase"],
    ),
]
FIRST = [
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Eva",
    "Finn",
    "Gita",
    "Hugo",
    "Iris",
    "Jon",
    "Kai",
    "Lena",
    "Mo",
    "Nia",
    "Omar",
    "Pia",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
]
LAST = [
    "Novak",
    "Silva",
    "Okafor",
    "Chen",
    "Larsen",
    "Moreau",
    "Rossi",
    "Haddad",
    "Kim",
    "Walsh",
    "Ortiz",
    "Berg",
]
COMPANY = [
    "Northwind",
    "Bluefin",
    "Harbor",
    "Atlas",
    "Sprout",
    "Vega",
    "Pinecrest",
    "Koala",
    "Riverbend",
    "Summit",
    "Juniper",
    "Cobalt",
    "Maple",
    "Orion",
    "Quarry",
    "Lumen",
]
SUFFIX = ["Ltd", "Inc", "LLC", "GmbH", "Co.", "Partners", "Group", "plc"]
UNREADABLE = ["n/a", "#N/A", "lots", "-3", "??", "soon"]


def _account(rng: random.Random, consumer: bool) -> str:
    if consumer:
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    return f"{rng.choice(COMPANY)} {rng.choice(['Logistics', 'Foods', 'Health', 'Labs', 'Retail', 'Energy', 'Media'])} {rng.choice(SUFFIX)}"  # noqa: E501


def rows(count: int = 500, seed: int = 2026) -> list[list[object]]:
    rng = random.Random(seed)
    out: list[list[object]] = []
    for i in range(count):
        industries, client_based, client_offers, client_bills, offers, bills = rng.choice(
            ARCHETYPES
        )
        consumer = rng.random() < 0.35
        clientish = rng.random() < (0.8 if client_based else 0.12)
        since = dt.date(2026, 10, 31) - dt.timedelta(days=rng.randint(15, 365 * 12))
        row: list[object] = [
            _account(rng, consumer),
            rng.choice(industries),
            rng.choice(client_offers if clientish else offers),
            rng.choice(client_bills if clientish else bills),
            since if rng.random() < 0.9 else None,
            rng.choice([1, 1, 2, 4, 12, 24, 52]) if rng.random() < 0.8 else None,
            rng.choice(
                ["Tailored", "Bespoke", "custom", "High"]
                if clientish
                else ["Standard", "standard", "Low", "off-the-shelf", "medium"]
            ),
            rng.choice(["Yes", "Y", "yes", "x"] if clientish else ["No", "N", "no", ""]),
            rng.choice([2, 3, 4, 6, 8] if clientish else [0, 0, 0.2, 1]),
            rng.choice(["Yes", "Y"] if consumer else ["No", "N", "no"]),
            rng.choice([10, 14, 21, 30, 45, 60] if clientish else [0, 1, 1, 2, 3]),
            rng.choice(["Value", "value", "Quality"] if clientish else ["Price", "price", ""]),
            rng.choice([0, 1, 2, 3, 5] if clientish else [0, 0, 0, 1]),
            rng.choice(REGIONS),
            rng.choice(OWNERS),
            rng.choice(
                [
                    "",
                    "",
                    "",
                    "Renewal due",
                    "Key account",
                    "Asked for a discount",
                    "=not a formula, a note",
                ]
            ),
        ]
        if i % 37 == 5:  # a few unreadable cells, as real lists have
            row[rng.choice([4, 5, 8, 10, 12])] = rng.choice(UNREADABLE)
        if i % 53 == 7:
            row[rng.choice([6, 7, 11])] = rng.choice(["maybe", "sometimes", "depends"])
        out.append(row)
    return out


def build(count: int = 500, seed: int = 2026) -> Workbook:
    wb = Workbook()
    ws = wb.active
    ws.title = "Accounts"
    ws.append(HEADERS)
    data = rows(count, seed)
    for r in data:
        ws.append(r)
    header_fill = PatternFill("solid", fgColor="1F4E78")
    for cell in ws[1]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = header_fill
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for row in ws.iter_rows(min_row=2, min_col=5, max_col=5):
        for cell in row:
            if isinstance(cell.value, dt.date):
                cell.number_format = "yyyy-mm-dd"
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str) and cell.value.startswith(("=", "#")):
                # a note that looks like a formula, or "#N/A" pasted from elsewhere, is text
                cell.data_type = "s"
                cell.quotePrefix = True
    widths = [28, 24, 34, 22, 12, 9, 14, 12, 12, 7, 9, 11, 10, 8, 10, 24]
    for i, w in enumerate(widths):
        ws.column_dimensions[ws.cell(row=1, column=i + 1).column_letter].width = w
    last = len(data) + 1
    table = Table(displayName="Accounts", ref=f"A1:P{last}")
    table.tableStyleInfo = TableStyleInfo(name="TableStyleMedium2", showRowStripes=True)
    ws.add_table(table)
    ws.freeze_panes = "B2"

    regions = wb.create_sheet("Regions")
    regions.append(["Region", "Accounts", "Referrals", "Share"])
    for i, region in enumerate(REGIONS, start=2):
        regions.append(
            [
                region,
                f"=COUNTIF(Accounts!$N$2:$N${last},A{i})",
                f"=SUMIF(Accounts!$N$2:$N${last},A{i},Accounts!$M$2:$M${last})",
                f"=IF(SUM($B$2:$B$5)=0,0,B{i}/SUM($B$2:$B$5))",
            ]
        )
        regions.cell(row=i, column=4).number_format = "0%"
    regions.append(["Total", "=SUM(B2:B5)", "=SUM(C2:C5)", "=SUM(D2:D5)"])
    for cell in regions[1]:
        cell.font = Font(bold=True)
    chart = BarChart()
    chart.title = "Accounts by region"
    chart.add_data(Reference(regions, min_col=2, min_row=1, max_row=5), titles_from_data=True)
    chart.set_categories(Reference(regions, min_col=1, min_row=2, max_row=5))
    regions.add_chart(chart, "F2")

    about = wb.create_sheet("About")
    about["A1"] = "Sample account list for the relationship add-in demo"
    about["A1"].font = Font(bold=True, size=13)
    about["A3"] = "Generated by scripts/make_sample_workbook.py (fictional data)."
    about["A4"] = "Headers are spelled the way analysts write them; a few cells are unreadable."
    wb.properties.title = "Sample accounts"
    wb.properties.creator = "relationship add-in"
    fixed = dt.datetime(2026, 11, 1, 9, 0, 0)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    wb.calculation.fullCalcOnLoad = True
    return wb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--rows", type=int, default=500)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    build(args.rows).save(args.out)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
