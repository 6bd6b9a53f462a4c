"""The Scrapy side of bench/crawl.sh: a CrawlSpider that follows every link of the site.

Run: scrapy runspider bench/crawl_spider.py -a start=http://127.0.0.1:PORT/ -s CONCURRENT_REQUESTS=16
It saves nothing (Scrapy keeps pages only in a pipeline); it counts pages in the crawl stats.
"""
from urllib.parse import urlparse

from scrapy.linkextractors import LinkExtractor
from scrapy.spiders import CrawlSpider, Rule


class SiteSpider(CrawlSpider):
    name = "site"
    rules = (Rule(LinkExtractor(), callback="parse_page", follow=True),)

    def __init__(self, start=None, *args, **kwargs):
        self.start_urls = [start]
        self.allowed_domains = [urlparse(start).hostname]
        super().__init__(*args, **kwargs)

    def parse_start_url(self, response):
        return self.parse_page(response)

    def parse_page(self, response):
        return None
