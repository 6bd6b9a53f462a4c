"""The Scrapy side of bench/crawl.sh: a CrawlSpider that follows every link of the site.

Run: python3 -m scrapy runspider bench/crawl_spider.py -a start=http://127.0.0.1:PORT/ \
         -s CONCURRENT_REQUESTS=16 -s CONCURRENT_REQUESTS_PER_DOMAIN=16 -s DOWNLOAD_DELAY=0 \
         -s ROBOTSTXT_OBEY=True -s LOG_LEVEL=WARNING
It saves nothing (Scrapy keeps pages only through a pipeline, and this one has none). When it
closes it prints one line of its own counts on stdout: `scrapy-stats {json}`.
"""
import json
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

    def closed(self, reason):
        stats = self.crawler.stats.get_stats()
        keep = {
            k: v
            for k, v in stats.items()
            if k.startswith(("downloader/response_count", "downloader/response_status_count",
                             "robotstxt/", "offsite/", "dupefilter/", "log_count/"))
        }
        keep["finish_reason"] = reason
        print("scrapy-stats " + json.dumps(keep, sort_keys=True), flush=True)
