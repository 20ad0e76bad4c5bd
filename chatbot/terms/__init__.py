"""The school calendar: term dates, holidays and INSET days imported from a file."""
